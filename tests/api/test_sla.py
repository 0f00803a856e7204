"""SLA clocks and escalations through the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tickets import sla
from tickets.models import Escalation, Ticket

from ..factories import TeamFactory

pytestmark = pytest.mark.django_db
TICKETS = "/api/v1/tickets/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_CHAT = {
    "subject": "物流查询", "channel": "web_chat", "priority": "urgent",
    "customer": {"name": "王女士", "phone": "13900000001"}, "message": {"body": "我的快递到哪了？"},
}


def test_a_new_ticket_shows_its_running_clocks(api):
    with time_machine.travel(datetime(2026, 11, 24, 10, tzinfo=SHANGHAI), tick=False):
        body = api.post(TICKETS, NEW_CHAT, format="json").json()
    assert [(c["metric"], c["due_at"], c["remaining_seconds"], c["paused"], c["breached"]) for c in body["sla"]] == [
        ("first_response", "2026-11-24T10:00:15+08:00", 15, False, False),
        ("resolution", "2026-11-24T14:00:00+08:00", 4 * 3600, False, False),
    ]


def test_breached_tickets_and_tickets_due_soon_are_filtered(api):
    start = datetime(2026, 11, 24, 10, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        late = api.post(TICKETS, NEW_CHAT, format="json").json()["reference"]
        api.post(TICKETS, {**NEW_CHAT, "channel": "email"}, format="json")
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        for pk, _at in sla.claim_due_clocks(now=start + timedelta(seconds=30)):
            sla.check_clock(clock_id=pk)
        breached = api.get(TICKETS, {"sla_breached": "true"}).json()["results"]
        not_breached = api.get(TICKETS, {"sla_breached": "false"}).json()["results"]
        soon = api.get(TICKETS, {"sla_due_before": (start + timedelta(hours=1)).isoformat()}).json()["results"]
    assert [t["reference"] for t in breached] == [late]
    assert len(not_breached) == 1 and not_breached[0]["reference"] != late
    assert [t["reference"] for t in soon] == [late]
    assert breached[0]["priority"] == "urgent"


def test_a_ticket_is_escalated_to_another_department_and_handed_back(api):
    first_line, risk = TeamFactory(name="一线"), TeamFactory(name="风控", handover_target_seconds=7200)
    with time_machine.travel(datetime(2026, 11, 24, 10, tzinfo=SHANGHAI), tick=False):
        reference = api.post(TICKETS, {**NEW_CHAT, "team": first_line.pk}, format="json").json()["reference"]
        response = api.post(f"{TICKETS}{reference}/escalate", {"team": risk.pk, "reason": "疑似盗刷"}, format="json")
        assert response.status_code == 201
        escalation = response.json()
        assert (escalation["kind"], escalation["to_team"]["name"], escalation["from_team"]["name"]) == ("manual", "风控", "一线")
        assert escalation["response_due_at"] == "2026-11-24T12:00:00+08:00"
        ticket = api.get(f"{TICKETS}{reference}/").json()
        assert (ticket["status"], ticket["team"]["name"]) == ("on_hold", "风控")
        assert "handover" in [c["metric"] for c in ticket["sla"]]
        again = api.post(f"{TICKETS}{reference}/escalate", {"team": first_line.pk, "reason": "x"}, format="json")
        assert again.status_code == 409
        back = api.post(f"{TICKETS}{reference}/hand-back", {"note": "已核实，非盗刷"}, format="json")
        assert back.status_code == 200 and back.json()["returned_at"] is not None
    ticket = api.get(f"{TICKETS}{reference}/").json()
    assert (ticket["status"], ticket["team"]["name"]) == ("open", "一线")
    listed = api.get(f"{TICKETS}{reference}/escalations/").json()["results"]
    assert [e["kind"] for e in listed] == ["manual"]
    assert api.post(f"{TICKETS}{reference}/hand-back", {}, format="json").status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [({"reason": "x"}, "team"), ({"team": 999999, "reason": "x"}, "team"), ({"team": "abc", "reason": "x"}, "team"),
     ({"team": None, "reason": "x"}, "team"), ("TEAM", None)],
)
def test_a_bad_escalation_is_a_400_naming_the_field(api, body, field):
    reference = api.post(TICKETS, NEW_CHAT, format="json").json()["reference"]
    if field is None:
        body, field = {"team": TeamFactory().pk, "reason": "  "}, "reason"
    response = api.post(f"{TICKETS}{reference}/escalate", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Escalation.objects.exists()
    assert Ticket.objects.get().status == "new"


def test_an_agent_cannot_escalate_another_teams_ticket(client, alice, billing_team):
    from ..factories import TicketFactory

    other = TicketFactory(team=billing_team)
    client.force_login(alice.user)
    response = client.post(f"{TICKETS}{other.reference}/escalate", {"team": billing_team.pk, "reason": "x"}, content_type="application/json")
    assert response.status_code == 404
