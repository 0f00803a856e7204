"""Satisfaction surveys: the link sent on solve, the public page, ratings and the complaint loop."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse

from helpdesk import webhooks
from helpdesk.errors import DomainError
from helpdesk.models import Notification, WebhookDelivery, WebhookEndpoint
from tickets import csat, services
from tickets.models import Complaint, Csat, CsatSurvey, Message, Ticket

from ..factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^/\s]+(/survey/[^/\s]+/)")


@pytest.fixture
def ticket(support_team, alice) -> Ticket:
    return TicketFactory(team=support_team, assignee=alice, status="open", customer=CustomerFactory(language="en"))


def solve(ticket: Ticket, captured) -> str:
    """Solve the ticket through the services and return the path of the survey link sent."""
    with captured(execute=True):
        services.change_status(ticket=ticket, status="solved")
    return csat.survey_path(ticket.surveys.order_by("-pk").first())


def test_solving_emails_the_customer_a_link_in_their_language(ticket, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.change_status(ticket=ticket, status="solved")
        assert mailoutbox == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    survey = CsatSurvey.objects.get(ticket=ticket)
    assert (survey.expires_at - survey.sent_at).days == 7
    [mail] = mailoutbox
    assert mail.to == [ticket.customer.email]
    assert ticket.reference in mail.subject and "Rate" in mail.subject  # English, as the customer prefers
    token = LINK.search(mail.body).group(1).split("/")[2]
    assert csat.survey_for_token(token) == survey  # (the token carries its signing time: compare what it names)
    assert not ticket.messages.filter(author_kind=Message.AuthorKind.SYSTEM).exists()


def test_solving_a_chat_ticket_without_email_posts_the_link_in_the_conversation(
    support_team, mailoutbox, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(team=support_team, status="open", customer=CustomerFactory(email="", language="zh-hans"))
    WebhookEndpoint.objects.create(name="chat", url="http://127.0.0.1:9/x", secret="x", events=["message.created"])
    with django_capture_on_commit_callbacks():
        services.change_status(ticket=ticket, status="solved")
    message = ticket.messages.get(author_kind=Message.AuthorKind.SYSTEM)
    assert not message.is_internal  # public: the chat platform relays it to the customer
    assert csat.survey_path(CsatSurvey.objects.get(ticket=ticket)) in message.body
    assert mailoutbox == []
    relayed = WebhookDelivery.objects.get(event="message.created")
    assert relayed.payload["data"]["author"] == "system" and relayed.payload["data"]["id"] == message.pk


def test_a_reopened_and_solved_again_ticket_gets_a_new_survey_and_the_new_rating_replaces_the_old(
    ticket, django_capture_on_commit_callbacks, client
):
    first = solve(ticket, django_capture_on_commit_callbacks)
    client.post(first, {"stars": "2", "comment": "slow"})
    services.change_status(ticket=ticket, status="open")
    second = solve(ticket, django_capture_on_commit_callbacks)
    assert second != first and ticket.surveys.count() == 2
    response = client.post(second, {"stars": "5", "comment": "fixed now"})
    assert response.status_code == 200
    rating = Csat.objects.get(ticket=ticket)
    assert (rating.stars, rating.comment, rating.source) == (5, "fixed now", "survey")


def test_solving_again_retires_the_unanswered_link(ticket, django_capture_on_commit_callbacks, client):
    first = solve(ticket, django_capture_on_commit_callbacks)
    services.change_status(ticket=ticket, status="open")
    solve(ticket, django_capture_on_commit_callbacks)
    assert client.get(first).status_code == 410


def test_the_page_shows_the_stars_in_the_customers_language_and_switches(ticket, django_capture_on_commit_callbacks, client):
    path = solve(ticket, django_capture_on_commit_callbacks)
    english = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans")
    page = english.content.decode()
    assert english.status_code == 200 and english["Content-Language"] == "en"
    assert 'name="viewport"' in page and 'lang="en"' in page and "How did we do?" in page
    assert page.count('name="stars"') == 5 and "csrfmiddlewaretoken" in page
    assert 'href="?lang=zh-hans"' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no external assets: works offline
    chinese = client.get(path + "?lang=zh-hans")
    assert chinese["Content-Language"] == "zh-hans" and 'lang="zh-hans"' in chinese.content.decode()
    assert 'href="?lang=en"' in chinese.content.decode()


def test_the_page_defaults_to_chinese_for_a_chinese_speaking_customer(support_team, django_capture_on_commit_callbacks, client):
    ticket = TicketFactory(team=support_team, status="open", customer=CustomerFactory(language="zh-hans"))
    path = solve(ticket, django_capture_on_commit_callbacks)
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert response["Content-Language"] == "zh-hans"


def test_submitting_stores_the_rating_for_the_assignee_and_team_and_thanks(
    ticket, alice, support_team, django_capture_on_commit_callbacks, client
):
    path = solve(ticket, django_capture_on_commit_callbacks)
    WebhookEndpoint.objects.create(name="bi", url="http://127.0.0.1:9/x", secret="x", events=["csat.received"])
    webhooks.forget_endpoints()
    response = client.post(path, {"stars": "4", "comment": "quick and kind"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    rating = Csat.objects.get(ticket=ticket)
    assert (rating.stars, rating.comment, rating.source, rating.agent, rating.team) == (
        4, "quick and kind", "survey", alice, support_team
    )
    assert CsatSurvey.objects.get(ticket=ticket).used_at is not None
    payload = WebhookDelivery.objects.get(event="csat.received").payload["data"]
    assert payload["ticket"] == ticket.reference and payload["stars"] == 4 and payload["complaint_id"] is None
    assert not Complaint.objects.exists()


def test_the_form_is_csrf_protected(ticket, django_capture_on_commit_callbacks):
    from django.test import Client

    path = solve(ticket, django_capture_on_commit_callbacks)
    response = Client(enforce_csrf_checks=True).post(path, {"stars": "5"})
    assert response.status_code == 403
    assert not Csat.objects.exists()


def test_missing_or_out_of_range_stars_redisplay_the_form(ticket, django_capture_on_commit_callbacks, client):
    path = solve(ticket, django_capture_on_commit_callbacks)
    for stars in ("", "0", "6", "x"):
        response = client.post(path, {"stars": stars, "comment": "kept"})
        assert response.status_code == 400 and "kept" in response.content.decode()
    assert not Csat.objects.exists()
    assert CsatSurvey.objects.get(ticket=ticket).used_at is None


def test_a_used_link_shows_a_clear_page_and_counts_once(ticket, django_capture_on_commit_callbacks, client):
    path = solve(ticket, django_capture_on_commit_callbacks)
    assert client.post(path, {"stars": "5"}).status_code == 200
    again = client.post(path, {"stars": "1"})
    assert again.status_code == 410 and "此调查已提交过" in again.content.decode()
    assert client.get(path).status_code == 410
    assert Csat.objects.get(ticket=ticket).stars == 5 and not Complaint.objects.exists()


def test_two_submits_of_one_link_cannot_both_count(ticket, django_capture_on_commit_callbacks, monkeypatch):
    token = solve(ticket, django_capture_on_commit_callbacks).split("/")[2]
    stale = csat.survey_for_token(token)  # the second submit read the survey before the first claimed it
    csat.submit_survey(token=token, stars=5)
    monkeypatch.setattr(csat, "survey_for_token", lambda _token: stale)
    with pytest.raises(csat.DomainError) as refused:
        csat.submit_survey(token=token, stars=1)
    assert refused.value.code == csat.USED
    assert Csat.objects.get(ticket=ticket).stars == 5 and not Complaint.objects.exists()


def test_an_expired_link_shows_a_clear_page(ticket, django_capture_on_commit_callbacks, client):
    with time_machine.travel("2026-05-01 10:00+08:00", tick=False):
        path = solve(ticket, django_capture_on_commit_callbacks)
    with time_machine.travel("2026-05-08 09:59+08:00", tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel("2026-05-08 10:00:01+08:00", tick=False):
        response = client.get(path)
        assert response.status_code == 410 and "此链接已过期" in response.content.decode()  # the default language
        assert client.post(path, {"stars": "5"}).status_code == 410
    assert not Csat.objects.exists()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature changed
        lambda token: "x" + token,  # payload changed
        lambda token: "not-a-token",
        lambda token: signing.dumps("0" * 32, salt=csat.SALT),  # well signed, but no such survey
        lambda token: signing.dumps(token, salt="another.salt"),  # signed for something else
    ],
)
def test_a_tampered_link_is_refused_with_400(ticket, django_capture_on_commit_callbacks, client, mangle):
    token = solve(ticket, django_capture_on_commit_callbacks).split("/")[2]
    path = reverse("csat-survey", args=[mangle(token)])
    assert client.get(path).status_code == 400
    response = client.post(path, {"stars": "1"})
    assert response.status_code == 400 and "此链接无效" in response.content.decode()
    assert not Csat.objects.exists()


def test_a_low_rating_opens_one_complaint_and_notifies_the_teams_leads(
    ticket, lena, bob, support_team, django_capture_on_commit_callbacks, mailoutbox
):
    lena.user.email = "lena@example.com"
    lena.user.save()
    with django_capture_on_commit_callbacks(execute=True):
        csat.record_rating(ticket=ticket, stars=1, comment="rude", source=Csat.Source.API)
    complaint = Complaint.objects.get()
    assert (complaint.ticket, complaint.team, complaint.status, complaint.csat.stars) == (ticket, support_team, "open", 1)
    [note] = Notification.objects.all()
    assert note.recipient == lena.user and note.kind == "csat_complaint" and ticket.reference in note.text
    assert [m.to for m in mailoutbox] == [["lena@example.com"]]
    # Rated low again (e.g. after a reopen): the same complaint, reopened, not a second one.
    csat.close_complaint(complaint=complaint, root_cause="attitude", outcome="coached", actor=lena.user)
    csat.record_rating(ticket=ticket, stars=2, source=Csat.Source.API)
    complaint.refresh_from_db()
    assert Complaint.objects.count() == 1 and complaint.status == "open" and complaint.closed_at is None
    assert Notification.objects.filter(recipient=lena.user).count() == 2
    assert not Notification.objects.filter(recipient=bob.user).exists()


def test_three_stars_open_no_complaint(ticket, lena):
    csat.record_rating(ticket=ticket, stars=3, source=Csat.Source.API)
    assert not Complaint.objects.exists() and not Notification.objects.exists()


def test_stars_outside_one_to_five_are_refused_by_the_service(ticket):
    for stars in (0, 6, True):
        with pytest.raises(csat.DomainError) as refused:
            csat.record_rating(ticket=ticket, stars=stars, source=Csat.Source.API)
        assert refused.value.field == "stars"
    assert not Csat.objects.exists()


def test_closing_a_complaint_needs_root_cause_and_outcome_and_records_who(ticket, lena):
    csat.record_rating(ticket=ticket, stars=1, source=Csat.Source.API)
    complaint = Complaint.objects.get()
    with pytest.raises(csat.DomainError) as refused:
        csat.close_complaint(complaint=complaint, root_cause="", outcome="done", actor=lena.user)
    assert refused.value.field == "root_cause"
    csat.close_complaint(complaint=complaint, root_cause="slow_response", outcome="apologised", actor=lena.user)
    complaint.refresh_from_db()
    assert (complaint.status, complaint.root_cause, complaint.closed_by) == ("closed", "slow_response", lena.user)
    assert complaint.history.latest().history_user == lena.user
    with pytest.raises(csat.DomainError):
        csat.close_complaint(complaint=complaint, root_cause="other", outcome="again", actor=lena.user)


# --- the admin -----------------------------------------------------------------------


@pytest.fixture
def complaint(ticket) -> Complaint:
    csat.record_rating(ticket=ticket, stars=1, comment="never again", source=Csat.Source.API)
    return Complaint.objects.get()


def test_a_lead_closes_the_complaint_in_the_admin(client, lena, complaint):
    client.force_login(lena.user)
    url = reverse("admin:tickets_complaint_change", args=[complaint.pk])
    page = client.get(url)
    assert page.status_code == 200 and "never again" in page.content.decode()
    refused = client.post(url, {"root_cause": "", "outcome": "", "close": "on"})
    assert refused.status_code == 200  # the form names what is missing
    complaint.refresh_from_db()
    assert complaint.status == "open"
    response = client.post(url, {"root_cause": "attitude", "outcome": "Called the customer", "close": "on"})
    assert response.status_code == 302
    complaint.refresh_from_db()
    assert (complaint.status, complaint.root_cause, complaint.closed_by) == ("closed", "attitude", lena.user)
    assert complaint.history.latest().history_user == lena.user
    closed_page = client.get(url).content.decode()
    assert 'name="close"' not in closed_page and 'name="outcome"' not in closed_page  # a record now


def test_a_lead_of_another_team_and_an_agent_cannot_see_the_complaint(client, complaint, billing_team, bob):
    from django.contrib.auth.models import Group

    from helpdesk import roles

    from ..factories import AgentFactory, UserFactory

    other_lead = AgentFactory(user=UserFactory(username="otto"), teams=[billing_team])
    other_lead.user.groups.add(Group.objects.get(name=roles.TEAM_LEAD))
    client.force_login(other_lead.user)
    listing = client.get(reverse("admin:tickets_complaint_changelist"))
    assert listing.status_code == 200 and complaint.ticket.reference not in listing.content.decode()
    change = client.get(reverse("admin:tickets_complaint_change", args=[complaint.pk]))
    assert change.status_code == 302 and change["Location"] == reverse("admin:index")  # "does not exist"
    client.force_login(bob.user)
    assert client.get(reverse("admin:tickets_complaint_changelist")).status_code == 403


def test_the_rating_list_is_read_only_and_scoped(client, alice, bob, complaint):
    client.force_login(alice.user)
    listing = client.get(reverse("admin:tickets_csat_changelist"))
    assert listing.status_code == 200 and complaint.ticket.reference in listing.content.decode()
    assert client.post(reverse("admin:tickets_csat_change", args=[complaint.csat.pk]), {"stars": "5"}).status_code == 403
    client.force_login(bob.user)
    assert complaint.ticket.reference not in client.get(reverse("admin:tickets_csat_changelist")).content.decode()


# --- found in review ----------------------------------------------------------------------


@pytest.fixture
def closed_complaint(support_team, alice, lena):
    from ..factories import TicketFactory

    ticket = TicketFactory(team=support_team, assignee=alice, status="solved", customer=CustomerFactory(language="en"))
    rating = csat.record_rating(ticket=ticket, stars=1, comment="bad", source=Csat.Source.API)
    complaint = Complaint.objects.get(csat=rating)
    csat.close_complaint(complaint=complaint, root_cause="attitude", outcome="Coached the agent", actor=lena.user)
    return complaint


def test_a_closed_complaint_is_shown_but_not_saved_again_in_the_admin(client, lena, closed_complaint):
    client.force_login(lena.user)
    url = reverse("admin:tickets_complaint_change", args=[closed_complaint.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"_save": "Save"}).status_code == 403
    assert client.post(url, {"close": "on", "root_cause": "process", "outcome": "x", "_save": "Save"}).status_code == 403
    closed_complaint.refresh_from_db()
    assert (closed_complaint.root_cause, closed_complaint.outcome) == ("attitude", "Coached the agent")


def test_findings_of_a_closed_complaint_cannot_be_overwritten(closed_complaint):
    with pytest.raises(DomainError) as refused:
        csat.record_complaint_findings(complaint=closed_complaint, root_cause="", outcome="")
    assert refused.value.code == "complaint_closed"


def test_a_rating_stays_with_the_team_it_counts_for(support_team, billing_team, alice, lena, bob):
    from ..factories import TicketFactory

    ticket = TicketFactory(team=support_team, assignee=alice, status="solved")
    csat.record_rating(ticket=ticket, stars=4, source=Csat.Source.API)
    services.update_ticket(ticket=ticket, changes={"team": billing_team, "assignee": None})
    assert not csat.ratings_visible_to(bob.user).exists()
    assert csat.ratings_visible_to(lena.user).exists() and csat.ratings_visible_to(alice.user).exists()
