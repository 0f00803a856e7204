"""Keeping customer data (helpdesk.privacy): retention, export and erasure on request.

张三 (Zhang San) writes with his phone, email and ID number in the text and an attachment
named after him; agents greet him by name, a lead and a QA inspector quote him. After
anonymisation none of it may be found anywhere (live rows, their history, webhook payloads),
while every report number stays what it was.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group
from django.db.models import Q
from django.utils import timezone
from rest_framework.test import APIClient

from helpdesk import privacy, roles
from helpdesk.api_keys import create_api_key
from helpdesk.models import (
    Channel,
    Customer,
    CustomerIdentity,
    WebhookDelivery,
    WebhookEndpoint,
)
from qa.models import CriterionScore, Dispute, Review, Scorecard
from tickets import csat, reports, services
from tickets.models import Complaint, Csat, Escalation, Message, Ticket
from tickets.tasks import anonymise_expired_conversations_task

from ..factories import CustomerFactory, TagFactory

S = Ticket.Status
PHONE, EMAIL, ID_NUMBER = "13800138000", "zhangsan@example.com", "110101199003071234"
SHOP_ID, OPENID, CONVERSATION = "shop-zs-000042", "openid-zhangsan-1", "conv-openid-zhangsan-1"
ATTACHMENT = {"name": "张三身份证.jpg", "url": "https://files.example.net/zs/1.jpg", "size": 2048, "content_type": "image/jpeg"}
# Whatever of these survives anywhere is a leak.
SECRETS = ["张三", PHONE, "138 0013 8000", EMAIL, ID_NUMBER, SHOP_ID, OPENID, CONVERSATION, "张三身份证", "files.example.net"]
DAY = timedelta(days=1)


@pytest.fixture
def zhang(db) -> Customer:
    customer = CustomerFactory(name="张三", phone=PHONE, email=EMAIL, external_id=SHOP_ID)
    CustomerIdentity.objects.create(customer=customer, channel=Channel.WECHAT, external_id=OPENID)
    customer.tags.add(TagFactory(name="孕妇"))
    return customer


@pytest.fixture
def li(db) -> Customer:
    return CustomerFactory(name="李四", phone="13900139000", email="lisi@example.com")


@pytest.fixture
def hooks(db) -> WebhookEndpoint:
    """An endpoint subscribed to everything, so payloads with subjects and bodies are written."""
    return WebhookEndpoint.objects.create(
        name="crm", url="https://crm.example.com/hook", secret="s", events=list(WebhookEndpoint.Event.values)
    )


def conversation(customer: Customer, *, agent, lead, inspector, other_team, closed: bool = True, tag: str = "") -> Ticket:
    """A full conversation through the services: messages, an escalation, a 2-star rating with
    its complaint, a QA review with a dispute; closed unless told otherwise."""
    ticket = services.open_ticket(
        customer=customer, subject=f"张三 的退款 {PHONE} {tag}", channel=Channel.WECHAT, team=agent.teams.first(),
        body=f"我是张三，电话 138 0013 8000，邮箱 ZhangSan@Example.com，身份证 {ID_NUMBER}",
        attachments=[ATTACHMENT], conversation_id=f"{CONVERSATION}{tag}",
    )
    services.assign_ticket(ticket=ticket, agent=agent, actor=agent.user)
    services.post_message(ticket=ticket, author_kind=Message.AuthorKind.AGENT, agent=agent, body="张三您好，请稍等。")
    services.post_message(
        ticket=ticket, author_kind=Message.AuthorKind.AGENT, agent=agent, internal=True, body=f"张三 的邮箱 {EMAIL} 已核实"
    )
    services.escalate_ticket(ticket=ticket, team=other_team, reason=f"张三 要求回电 {PHONE}", actor=lead.user)
    services.hand_back_ticket(ticket=Ticket.objects.get(pk=ticket.pk), note="已联系张三", actor=lead.user)
    services.change_status(ticket=Ticket.objects.get(pk=ticket.pk), status=S.SOLVED, actor=agent.user)
    rating = csat.record_rating(ticket=Ticket.objects.get(pk=ticket.pk), stars=2, comment=f"张三不满意，打 {PHONE}", source="api")
    csat.close_complaint(
        complaint=Complaint.objects.get(csat=rating), root_cause="slow_response", outcome=f"已致电张三 {PHONE}", actor=lead.user
    )
    version = Scorecard.objects.get(slug="standard").versions.get(number=1)
    review = Review.objects.create(
        ticket=ticket, agent=agent, inspector=inspector, scorecard_version=version, status=Review.Status.SUBMITTED,
        score=Decimal("85.00"), strengths="称呼张三得体", shortcomings=f"复述了电话 {PHONE}", coaching="", submitted_at=timezone.now(),
    )
    CriterionScore.objects.create(review=review, criterion=version.criteria.first(), points=1, comment=f"客户张三 {EMAIL}")
    Dispute.objects.create(review=review, reason="张三 自己说的号码")
    if closed:
        services.change_status(ticket=Ticket.objects.get(pk=ticket.pk), status=S.CLOSED, actor=agent.user)
    WebhookDelivery.objects.update(status=WebhookDelivery.Status.DELIVERED)  # as the worker would have
    return Ticket.objects.get(pk=ticket.pk)


@pytest.fixture
def talk(alice, lena, iris, billing_team, hooks):
    def make(customer: Customer, **kwargs) -> Ticket:
        return conversation(customer, agent=alice, lead=lena, inspector=iris, other_team=billing_team, **kwargs)

    return make


def everything_stored_about(ticket_ids: list[int]) -> str:
    """Every text the database keeps about these tickets, live and historical, as one string."""
    reviews = list(Review.objects.filter(ticket_id__in=ticket_ids).values_list("pk", flat=True))
    references = [Ticket(pk=pk).reference for pk in ticket_ids]
    rows = [
        *Ticket.objects.filter(pk__in=ticket_ids).values_list("subject", "conversation_id"),
        *Ticket.history.model.objects.filter(id__in=ticket_ids).values_list("subject", "conversation_id"),
        *Message.objects.filter(ticket_id__in=ticket_ids).values_list("body", "attachments"),
        *Csat.objects.filter(ticket_id__in=ticket_ids).values_list("comment"),
        *Complaint.objects.filter(ticket_id__in=ticket_ids).values_list("outcome"),
        *Complaint.history.model.objects.filter(ticket_id__in=ticket_ids).values_list("outcome"),
        *Escalation.objects.filter(ticket_id__in=ticket_ids).values_list("reason"),
        *Review.objects.filter(pk__in=reviews).values_list("strengths", "shortcomings", "coaching"),
        *Review.history.model.objects.filter(id__in=reviews).values_list("strengths", "shortcomings", "coaching"),
        *CriterionScore.objects.filter(review_id__in=reviews).values_list("comment"),
        *Dispute.objects.filter(review_id__in=reviews).values_list("reason", "resolution"),
        *Dispute.history.model.objects.filter(review_id__in=reviews).values_list("reason", "resolution"),
        *WebhookDelivery.objects.filter(Q(payload__reference__in=references) | Q(payload__ticket__in=references))
        .values_list("payload"),
    ]
    return json.dumps(rows, ensure_ascii=False, default=str)


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def report() -> dict:
    today = timezone.localdate()
    return reports.summary(start=today - 40 * DAY, end=today + 5 * DAY)


def after_retention(days: int = 1):
    """An instant `days` past the retention period of a ticket closed now."""
    return timezone.now() + timedelta(days=settings.RETENTION_CONVERSATION_DAYS + days)


# --- retention ---------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [privacy.ROWS, 2], ids=["one page", "pages of two rows"])
def test_retention_takes_the_customer_out_of_every_copy_of_the_conversation(zhang, talk, monkeypatch, rows):
    monkeypatch.setattr(privacy, "ROWS", rows)
    ticket = talk(zhang)
    assert leaks(everything_stored_about([ticket.pk]))  # the test data does hold them

    assert privacy.anonymise_expired_conversations(now=after_retention()) == 1

    assert leaks(everything_stored_about([ticket.pk])) == []
    # What people wrote; an automatic notice (it greets him by name) is in the leak check above.
    messages = list(ticket.messages.exclude(author_kind=Message.AuthorKind.SYSTEM).order_by("sent_at", "id"))
    assert messages[0].body.startswith("我是***，电话 ***，邮箱 ***，身份证 110101***********4")
    assert messages[0].attachments == [{"content_type": "image/jpeg", "size": 2048}]  # what it was, not whose
    assert messages[1].body == "***您好，请稍等。"
    ticket.refresh_from_db()
    assert ticket.subject.startswith("*** 的退款 ***")  # his own phone goes whole
    assert ticket.conversation_id == "" and ticket.anonymised_at is not None and ticket.status == S.CLOSED


def test_retention_keeps_every_report_number(zhang, li, talk):
    talk(zhang)
    talk(li, tag="li")
    before = report()
    assert before["tickets_created"] == 2 and before["csat"]["responses"] == 2 and before["qa"]["reviews"] == 2

    assert privacy.anonymise_expired_conversations(now=after_retention()) == 2

    assert report() == before


def test_retention_touches_only_tickets_closed_longer_ago_than_the_period(zhang, talk):
    start = timezone.now()
    expired = talk(zhang, tag="old")
    still_open = talk(zhang, closed=False, tag="open")  # opened as long ago, never closed
    with time_machine.travel(start + 100 * DAY, tick=False):
        recent = talk(zhang, tag="recent")  # closed 100 days later: still within the period

    done = privacy.anonymise_expired_conversations(now=start + timedelta(days=settings.RETENTION_CONVERSATION_DAYS + 50))

    assert done == 1
    assert Ticket.objects.filter(anonymised_at__isnull=False).get() == expired
    assert not Message.objects.filter(ticket=expired, body__contains="张三").exists()
    for kept in (recent, still_open):
        kept.refresh_from_db()
        assert kept.anonymised_at is None and "张三" in kept.subject
        assert Message.objects.filter(ticket=kept, body__contains="张三").exists()
        assert kept.history.filter(subject__contains="张三").exists()


def test_a_second_run_changes_nothing(zhang, talk, django_assert_max_num_queries):
    ticket = talk(zhang)
    now = after_retention()
    assert privacy.anonymise_expired_conversations(now=now) == 1
    stored, history = everything_stored_about([ticket.pk]), Ticket.history.count()
    marked = Ticket.objects.get(pk=ticket.pk).anonymised_at

    with django_assert_max_num_queries(4):  # the claim finds nothing; old deliveries: none left
        assert privacy.anonymise_expired_conversations(now=now + DAY) == 0

    assert everything_stored_about([ticket.pk]) == stored and Ticket.history.count() == history
    assert Ticket.objects.get(pk=ticket.pk).anonymised_at == marked


def test_zero_days_keeps_conversations_for_ever(zhang, talk, settings):
    ticket = talk(zhang)
    settings.RETENTION_CONVERSATION_DAYS = 0
    assert privacy.anonymise_expired_conversations(now=timezone.now() + 10_000 * DAY) == 0
    assert Ticket.objects.get(pk=ticket.pk).anonymised_at is None
    assert leaks(everything_stored_about([ticket.pk]))


def test_finished_webhook_deliveries_older_than_the_period_are_forgotten(zhang, talk):
    talk(zhang)
    pending = WebhookDelivery.objects.create(endpoint=WebhookEndpoint.objects.get(), event="ticket.created", payload={})
    privacy.anonymise_expired_conversations(now=after_retention())
    assert list(WebhookDelivery.objects.all()) == [pending]  # never delete what is still to be sent


def test_the_task_works_in_batches_and_queues_itself_for_the_rest(zhang, talk, monkeypatch):
    for n in range(3):
        talk(zhang, tag=str(n))
    queued = []
    monkeypatch.setattr(anonymise_expired_conversations_task, "apply_async", lambda **kw: queued.append(kw))
    with time_machine.travel(after_retention(), tick=False):
        assert anonymise_expired_conversations_task(batch_size=1, max_batches=2) == 2
        assert queued == [{"kwargs": {"batch_size": 1, "max_batches": 2}}]  # the budget ran out: more may wait
        assert anonymise_expired_conversations_task(batch_size=1, max_batches=2) == 1
        assert len(queued) == 1  # done: nothing queued
        assert anonymise_expired_conversations_task() == 0
    assert not Ticket.objects.filter(anonymised_at__isnull=True).exists()


def test_beat_runs_the_task_daily_with_an_expiry_under_its_period():
    entry = settings.CELERY_BEAT_SCHEDULE["anonymise-expired-conversations"]
    assert entry["task"] == anonymise_expired_conversations_task.name == "tickets.anonymise_expired_conversations"
    assert entry["options"]["expires"] < 24 * 3600


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_anonymises_once(alice, lena, iris, billing_team):
    import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from config.celery import app

    from ..tickets.test_tasks import wait_for

    ticket = conversation(
        CustomerFactory(name="张三", phone=PHONE), agent=alice, lead=lena, inspector=iris, other_team=billing_team
    )
    Ticket.objects.filter(pk=ticket.pk).update(closed_at=timezone.now() - timedelta(days=settings.RETENTION_CONVERSATION_DAYS + 1))
    queue, finished = f"test-{uuid.uuid4().hex}", []

    def count(sender=None, **kwargs):
        if getattr(sender, "name", None) == anonymise_expired_conversations_task.name:
            finished.append(kwargs["retval"])

    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]):
            anonymise_expired_conversations_task.apply_async(queue=queue)
            assert wait_for(lambda: len(finished) == 1)
            anonymise_expired_conversations_task.apply_async(queue=queue)
            assert wait_for(lambda: len(finished) == 2)
    finally:
        task_postrun.disconnect(count)
    assert finished == [1, 0]
    assert not Message.objects.filter(ticket=ticket, body__contains="张三").exists()


# --- who may ask -------------------------------------------------------------------------


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_agents_leads_and_integrations_are_refused(zhang, alice, lena, api):
    for client in (as_user(alice.user), as_user(lena.user), api):
        export = client.get(f"/api/v1/customers/{zhang.pk}/export/")
        erase = client.post(f"/api/v1/customers/{zhang.pk}/erase/")
        assert (export.status_code, erase.status_code) == (403, 403)
        assert erase.json()["error"]["code"] == "permission_denied"
    assert APIClient().get(f"/api/v1/customers/{zhang.pk}/export/").status_code == 401
    zhang.refresh_from_db()
    assert zhang.name == "张三" and zhang.identities.exists()
    assert not zhang.history.filter(history_change_reason=privacy.EXPORT_REASON).exists()


def test_an_administrators_read_only_key_exports_but_cannot_erase(zhang, ada):
    _key, plain = create_api_key(name="ada-read", scope="read", user=ada)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get(f"/api/v1/customers/{zhang.pk}/export/").status_code == 200
    assert client.post(f"/api/v1/customers/{zhang.pk}/erase/").status_code == 403


def test_an_unknown_customer_is_a_404(ada):
    client = as_user(ada)
    assert client.get("/api/v1/customers/999999/export/").status_code == 404
    assert client.post("/api/v1/customers/999999/erase/").status_code == 404


# --- export ------------------------------------------------------------------------------


def download(response) -> dict:
    assert response.status_code == 200, response
    assert response.streaming
    assert response["Content-Type"].startswith("application/json")
    return json.loads(b"".join(response.streaming_content))


def test_the_export_holds_the_customers_data_and_nothing_of_others(zhang, li, talk, ada):
    mine = talk(zhang)
    talk(li, tag="li")

    data = download(as_user(ada).get(f"/api/v1/customers/{zhang.pk}/export/"))

    assert data["format"] == privacy.EXPORT_FORMAT
    assert data["customer"] | {"first_seen_at": None, "created_at": None} == {
        "id": zhang.pk, "external_id": SHOP_ID, "name": "张三", "phone": PHONE, "email": EMAIL, "tier": "standard",
        "language": zhang.language, "tags": ["孕妇"], "first_seen_at": None, "created_at": None,
    }
    assert data["identities"] == [{"channel": "wechat", "external_id": OPENID}]
    [ticket] = data["tickets"]
    assert ticket["reference"] == mine.reference and ticket["status"] == "closed"
    written = [m for m in ticket["messages"] if m["author"] != "system"]  # an automatic notice may be there too
    assert [m["author"] for m in written][:3] == ["customer", "agent", "agent"]
    assert written[0]["attachments"] == [ATTACHMENT]
    assert written[2]["internal"] is True
    assert ticket["csat"]["stars"] == 2 and "不满意" in ticket["csat"]["comment"]
    assert ticket["complaints"][0]["root_cause"] == "slow_response"
    text = json.dumps(data, ensure_ascii=False)
    assert "李四" not in text and "13900139000" not in text and "lisi@" not in text


def test_the_export_is_audited_with_its_actor_and_the_log_names_no_one(zhang, talk, ada, caplog):
    talk(zhang)
    with caplog.at_level(logging.INFO, logger="helpdesk.privacy"):
        download(as_user(ada).get(f"/api/v1/customers/{zhang.pk}/export/"))
    row = zhang.history.latest()
    assert (row.history_change_reason, row.history_user) == (privacy.EXPORT_REASON, ada)
    line = next(r.getMessage() for r in caplog.records if r.name == "helpdesk.privacy")
    assert line == f"privacy.export customer={zhang.pk} actor={ada.pk}"
    assert leaks(caplog.text) == []


def test_the_export_reads_a_fixed_number_of_queries_whatever_the_customer_has(zhang, li, talk, ada):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    talk(li)
    for n in range(4):
        talk(zhang, tag=str(n))
    client = as_user(ada)

    def queries(customer) -> int:
        with CaptureQueriesContext(connection) as captured:
            download(client.get(f"/api/v1/customers/{customer.pk}/export/"))
        return len(captured)

    queries(li)  # the first request also reads the administrator's roles and permissions
    few, many = queries(li), queries(zhang)
    assert few == many == 7  # 1 ticket with its messages, or 4: customer (2), audit row, tags, identities, tickets, messages


def test_the_export_streams_tickets_a_chunk_at_a_time(zhang, talk, ada, monkeypatch):
    monkeypatch.setattr(privacy, "EXPORT_CHUNK", 2)
    made = [talk(zhang, tag=str(n)).reference for n in range(5)]
    response = as_user(ada).get(f"/api/v1/customers/{zhang.pk}/export/")
    pieces = list(response.streaming_content)
    assert len(pieces) == 1 + 5 + 1  # the head, one piece per ticket, the end
    assert [t["reference"] for t in json.loads(b"".join(pieces))["tickets"]] == made


# --- erasure -----------------------------------------------------------------------------


def test_erasure_through_the_api_forgets_the_customer_and_keeps_the_numbers(zhang, li, talk, ada, caplog):
    ticket = talk(zhang)
    talk(li, tag="li")
    before = report()
    erased_history_before = zhang.history.count()

    with caplog.at_level(logging.INFO, logger="helpdesk.privacy"):
        response = as_user(ada).post(f"/api/v1/customers/{zhang.pk}/erase/")

    assert response.status_code == 200
    assert response.json() == {"customer": zhang.pk, "already_erased": False, "tickets_anonymised": 1}
    zhang.refresh_from_db()
    assert (zhang.name, zhang.phone, zhang.email, zhang.external_id) == (privacy.erased_name(zhang.pk), "", "", "")
    assert not zhang.identities.exists() and not zhang.tags.exists()
    assert leaks(everything_stored_about([ticket.pk])) == []
    customer_history = json.dumps(list(zhang.history.values_list("name", "phone", "email", "external_id")), ensure_ascii=False)
    assert leaks(customer_history) == []
    latest = zhang.history.latest()
    assert (latest.history_change_reason, latest.history_user) == (privacy.ERASE_REASON, ada)
    assert zhang.history.count() == erased_history_before + 1
    assert report() == before
    assert Message.objects.filter(ticket__customer=li, body__contains="张三").exists()  # another customer's: kept
    assert leaks(caplog.text) == [] and f"customer={zhang.pk} actor={ada.pk}" in caplog.text


def test_erasing_again_changes_nothing(zhang, talk, ada):
    ticket = talk(zhang)
    client = as_user(ada)
    assert client.post(f"/api/v1/customers/{zhang.pk}/erase/").json()["already_erased"] is False
    stored, history = everything_stored_about([ticket.pk]), zhang.history.count()

    again = client.post(f"/api/v1/customers/{zhang.pk}/erase/")

    assert again.status_code == 200
    assert again.json() == {"customer": zhang.pk, "already_erased": True, "tickets_anonymised": 0}
    assert everything_stored_about([ticket.pk]) == stored and zhang.history.count() == history


def test_erasure_is_refused_while_a_ticket_is_not_closed(zhang, talk, ada):
    closed = talk(zhang, tag="a")
    solved = talk(zhang, closed=False, tag="b")

    response = as_user(ada).post(f"/api/v1/customers/{zhang.pk}/erase/")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "open_tickets" and solved.reference in error["message"]
    assert closed.reference not in error["message"]
    zhang.refresh_from_db()
    assert zhang.name == "张三" and zhang.identities.exists()
    assert not Ticket.objects.filter(anonymised_at__isnull=False).exists()


def test_a_customer_anonymised_by_retention_is_erased_without_redoing_the_tickets(zhang, talk, ada):
    ticket = talk(zhang)
    privacy.anonymise_expired_conversations(now=after_retention())
    marked = Ticket.objects.get(pk=ticket.pk).anonymised_at
    erasure = privacy.erase_customer(customer=zhang, actor=ada)
    assert erasure.changed and erasure.tickets_anonymised == 0
    assert Ticket.objects.get(pk=ticket.pk).anonymised_at == marked


# --- the admin ---------------------------------------------------------------------------


CHANGELIST = "/admin/helpdesk/customer/"


def test_the_admin_exports_one_customer_as_a_json_download(client, zhang, li, talk, ada):
    talk(zhang)
    client.force_login(ada)
    response = client.post(CHANGELIST, {"action": "export_data", "_selected_action": [zhang.pk]})
    assert response["Content-Disposition"] == f'attachment; filename="customer-{zhang.pk}.json"'
    assert download(response)["customer"]["name"] == "张三"
    assert zhang.history.latest().history_change_reason == privacy.EXPORT_REASON

    several = client.post(CHANGELIST, {"action": "export_data", "_selected_action": [zhang.pk, li.pk]}, follow=True)
    assert not several.streaming and several.redirect_chain  # back to the list, no file
    assert [m.level for m in several.context["messages"]] == [messages.WARNING]


def test_the_admin_confirms_then_erases_and_reports_who_was_refused(client, zhang, li, talk, ada):
    talk(zhang)
    waiting = talk(li, closed=False, tag="li")
    client.force_login(ada)
    chosen = {"action": "erase_personal_data", "_selected_action": [zhang.pk, li.pk]}

    page = client.post(CHANGELIST, chosen)

    assert page.status_code == 200
    assert page.templates[0].name == "admin/helpdesk/customer/erase_confirmation.html"
    assert waiting.reference in page.content.decode()  # the reason li will be refused, before anything happens
    assert Customer.objects.get(pk=zhang.pk).name == "张三"

    done = client.post(CHANGELIST, {**chosen, "confirm": "yes"}, follow=True)

    shown = [str(m) for m in done.context["messages"]]
    assert any(f"#{li.pk}" in m and waiting.reference in m for m in shown)
    assert Customer.objects.get(pk=zhang.pk).name == privacy.erased_name(zhang.pk)
    assert Customer.objects.get(pk=li.pk).name == "李四"


def test_the_admin_offers_neither_action_to_a_team_lead(client, zhang, lena):
    lena.user.groups.add(Group.objects.get(name=roles.TEAM_LEAD))
    client.force_login(lena.user)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    form = page.context["action_form"]  # None: no action at all for them
    assert form is None or not {"export_data", "erase_personal_data"} & set(dict(form.fields["action"].choices))
    client.post(CHANGELIST, {"action": "erase_personal_data", "_selected_action": [zhang.pk], "confirm": "yes"})
    assert Customer.objects.get(pk=zhang.pk).name == "张三"
