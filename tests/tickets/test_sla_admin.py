"""SLA in the admin: the countdown column and its filter, clocks on the ticket page, the
escalation actions, policy editing and each person's notifications."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from helpdesk.models import Channel, Notification
from tickets import services, sla
from tickets.models import Escalation, SlaPolicy, Ticket

from ..factories import CustomerFactory, TeamFactory
from .test_admin import CHANGELIST, change_url, count_queries

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 24, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def chat(team) -> Ticket:
    return services.open_ticket(customer=CustomerFactory(), subject="在吗", channel=Channel.WEB_CHAT, body="在吗", team=team)


def test_the_list_shows_a_countdown_and_filters_breached_tickets(client, lena, support_team):
    client.force_login(lena.user)
    with time_machine.travel(START, tick=False):
        late, fine = chat(support_team), chat(support_team)
        services.post_message(ticket=fine, author_kind="agent", agent=lena, body="您好")
    with time_machine.travel(START + timedelta(seconds=40), tick=False):
        page = client.get(CHANGELIST).content.decode()
        assert 'class="sla sla-breached"' in page and "−0:25" in page
        breached = client.get(CHANGELIST, {"sla": "breached"}).context["cl"].result_list
        on_track = client.get(CHANGELIST, {"sla": "ok"}).context["cl"].result_list
    assert list(breached) == [late]
    assert list(on_track) == [fine]  # only its resolution clock runs, hours away


def test_the_countdown_costs_no_query_per_row(client, lena, support_team):
    client.force_login(lena.user)
    chat(support_team)
    count_queries(client, CHANGELIST)
    few = count_queries(client, CHANGELIST)
    for _ in range(12):
        chat(support_team)
    assert count_queries(client, CHANGELIST) == few


def test_the_ticket_page_shows_every_clock_and_escalation(client, lena, support_team):
    client.force_login(lena.user)
    with time_machine.travel(START, tick=False):
        ticket = chat(support_team)
    for pk, _at in sla.claim_due_clocks(now=START + timedelta(seconds=20)):
        sla.check_clock(clock_id=pk, now=START + timedelta(seconds=20))
    page = client.get(change_url(ticket)).content.decode()
    assert "首次响应" in page and "解决" in page  # first response, resolution
    assert "L1" in page


def test_a_lead_escalates_from_the_list_and_hands_back(client, lena, support_team):
    risk = TeamFactory(name="风控")
    ticket = chat(support_team)
    client.force_login(lena.user)
    form = {"action": "escalate", "_selected_action": [ticket.pk], "apply": "1", "team": risk.pk, "reason": "疑似盗号"}
    assert client.post(CHANGELIST, form).status_code == 302
    ticket.refresh_from_db()
    assert (ticket.team, ticket.status) == (risk, Ticket.Status.ON_HOLD)
    assert Escalation.objects.get(ticket=ticket).created_by == lena.user
    form = {"action": "hand_back", "_selected_action": [ticket.pk], "apply": "1", "note": ""}
    client.post(CHANGELIST, form)  # lena no longer sees it (another team's ticket): refused quietly
    ticket.refresh_from_db()
    assert ticket.team == risk


def test_a_policy_in_business_hours_needs_a_calendar(client, ada):
    client.force_login(ada)
    form = {
        "name": "测试", "position": 1, "is_active": "on", "warn_at": "0.80", "level2_after": 3600, "level3_after": 7200,
        "targets-TOTAL_FORMS": 1, "targets-INITIAL_FORMS": 0,
        "targets-0-metric": "resolution", "targets-0-seconds": 3600, "targets-0-business_hours": "on",
    }
    page = client.post(reverse("admin:tickets_slapolicy_add"), form)
    assert page.status_code == 200 and not SlaPolicy.objects.filter(name="测试").exists()
    form["calendar"] = SlaPolicy.objects.exclude(calendar=None).first().calendar_id
    form["channels"] = ["email"]
    assert client.post(reverse("admin:tickets_slapolicy_add"), form).status_code == 302
    assert SlaPolicy.objects.get(name="测试").channels == ["email"]


def test_each_person_sees_only_their_own_notifications(client, lena, alice, support_team):
    ticket = chat(support_team)
    Notification.objects.create(recipient=lena.user, kind="sla_level_1", text="给 lena", ticket=ticket)
    Notification.objects.create(recipient=alice.user, kind="sla_level_0", text="给 alice", ticket=ticket)
    client.force_login(lena.user)
    page = client.get(reverse("admin:helpdesk_notification_changelist")).content.decode()
    assert "给 lena" in page and "给 alice" not in page
