"""Every number of docs/metrics.md, computed by hand on a small imported data set.

The range is Monday 2 to Sunday 8 November 2026 in Asia/Shanghai; the previous period is
26 October to 1 November; a year earlier is empty. Times below are local (+08:00).

    T1  created 11-02 09:00, reply 09:10, solved 10:00; delivery; 5 stars      FCR
    T2  created 11-02 23:30, replies 11-03 00:30 and 01:30, solved 02:00; 2 stars (crosses midnight)
    T3  created 11-08 23:59:30, reply 11-09 00:10, solved 11-09 01:00; returns (solved after the range)
    T4  created 11-01 23:00 (previous period), reply 23:20, solved 11-02 08:00; returns   FCR
    T5  created 11-04 10:00, reply 10:05, solved 10:30, reopened 11-05 09:00, reply 11:30,
        solved 12:00; delivery; 4 stars rated 11-09 (after the range)
    T6  created 11-05 14:00, never answered; no category; team Billing
    T7  created 11-09 00:00:00: the first instant after the range
    T8  created 10-28 10:00 (previous period), reply 10:30, open; delivery
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk.models import Channel
from tickets import reports
from tickets.imports import import_tickets
from tickets.models import Escalation, SlaClock, Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 11, 2), date(2026, 11, 8)


def at(text: str) -> str:
    return f"2026-{text}:00+08:00" if text.count(":") == 1 else f"2026-{text}+08:00"


def line(ref, created, replies=(), events=(), category="delivery", team="Support", csat=None) -> str:
    messages = [{"author": "customer", "body": "你好", "sent_at": at(created)}]
    messages += [{"author": "agent", "agent": "alice", "body": "您好", "sent_at": at(r)} for r in replies]
    return json.dumps({
        "external_id": ref, "subject": ref, "channel": "email", "category": category, "team": team,
        "assignee": "alice" if team == "Support" else "", "customer": {"external_id": f"c-{ref}", "name": ref},
        "messages": messages, "events": [{"status": s, "at": at(t)} for s, t in events],
        "csat": {"stars": csat[0], "at": at(csat[1])} if csat else None,
    })


DATA = [
    line("T1", "11-02 09:00", ["11-02 09:10"], [("solved", "11-02 10:00")], csat=(5, "11-02 11:00")),
    line("T2", "11-02 23:30", ["11-03 00:30", "11-03 01:30"], [("solved", "11-03 02:00")], csat=(2, "11-03 09:00")),
    line("T3", "11-08 23:59:30", ["11-09 00:10"], [("solved", "11-09 01:00")], category="returns"),
    line("T4", "11-01 23:00", ["11-01 23:20"], [("solved", "11-02 08:00")], category="returns"),
    line("T5", "11-04 10:00", ["11-04 10:05", "11-05 11:30"],
         [("solved", "11-04 10:30"), ("open", "11-05 09:00"), ("solved", "11-05 12:00")], csat=(4, "11-09 09:00")),
    line("T6", "11-05 14:00", category=None, team="Billing"),
    line("T7", "11-09 00:00:00"),
    line("T8", "10-28 10:00", ["10-28 10:30"]),
]


@pytest.fixture
def imported(alice, billing_team):
    report = import_tickets(DATA)
    assert not report.errors, report.errors
    return {t.external_id: t for t in Ticket.objects.all()}


def test_volume_outcomes_and_speed_by_hand(imported):
    r = reports.summary(start=START, end=END)
    assert r["period"] == {"from": "2026-11-02", "to": "2026-11-08"}
    assert r["tickets_created"] == 5  # T1 T2 T3 T5 T6: T4 and T8 before, T7 after
    assert r["tickets_solved"] == 4  # T1 T2 T4 T5 (last solve); T3 was solved after the range
    assert r["resolution_rate"] == 0.6  # of the 5 created, T1 T2 T5 solved before the range ended
    assert r["fcr_rate"] == 0.5  # T1 and T4: one public reply, never reopened
    assert r["reopen_rate"] == 0.25  # T5
    # First response of the created: 300 (T5), 600 (T1), 630 (T3), 3600 (T2); mean 1282.5 rounds
    # half up; p90 sits at position 0.9 x 3 = 2.7, between 630 and 3600: 630 + 0.7 x 2970 = 2709
    assert r["first_response_seconds"] == {"count": 4, "mean": 1283, "median": 615, "p90": 2709}
    # Resolution of the solved: 3600 (T1), 9000 (T2), 32400 (T4), 93600 (T5, to its last solve)
    assert r["resolution_seconds"] == {"count": 4, "mean": 34650, "median": 20700, "p90": 75240}
    # Handle: imported tickets have no status history, so first reply to solve:
    # 3000 (T1), 5400 (T2), 31200 (T4), 93300 (T5)
    assert r["handle_seconds"] == {"count": 4, "mean": 33225, "median": 18300, "p90": 74670}
    assert r["channels"] == {**{code: 0 for code in Channel.values}, "email": 5}
    hourly = [0] * 24
    hourly[9], hourly[10], hourly[14], hourly[23] = 1, 1, 1, 2  # local hours; T2 and T3 late at night
    assert r["hourly"] == hourly
    assert r["weekdays"] == [2, 0, 1, 1, 0, 0, 1]  # Mon T1 T2, Wed T5, Thu T6, Sun T3
    assert r["top_categories"] == [
        {"code": "delivery", "count": 3, "previous": 1, "year_ago": 0},  # T8 the week before
        {"code": "returns", "count": 1, "previous": 1, "year_ago": 0},  # T4
    ]
    assert r["rising_categories"] == [{"code": "delivery", "count": 3, "previous": 1, "change": 2, "year_ago": 0}]
    assert r["csat"] == {"responses": 2, "average": 3.5, "satisfied_share": 0.5}  # T5's rating came after


def test_the_previous_period_and_a_year_earlier(imported):
    r = reports.summary(start=START, end=END)
    previous = r["previous"]
    assert previous["period"] == {"from": "2026-10-26", "to": "2026-11-01"}
    assert (previous["tickets_created"], previous["tickets_solved"]) == (2, 0)  # T4 and T8; T4 solved in this range
    assert previous["resolution_rate"] == 0.0 and previous["fcr_rate"] is None
    assert r["change"]["previous"]["tickets_created"] == 1.5  # (5 - 2) / 2
    assert r["change"]["previous"]["tickets_solved"] is None  # nothing to compare with
    year_ago = r["year_ago"]
    assert year_ago["period"] == {"from": "2025-11-02", "to": "2025-11-08"}
    assert year_ago["tickets_created"] == 0 and year_ago["resolution_rate"] is None
    assert year_ago["first_response_seconds"] == {"count": 0, "mean": None, "median": None, "p90": None}
    assert r["change"]["year_ago"]["tickets_created"] is None


def test_a_filter_narrows_tickets_and_ratings(imported, support_team, billing_team):
    support = reports.summary(start=START, end=END, filters=reports.Filters(team=support_team.pk))
    assert support["tickets_created"] == 4 and support["csat"]["responses"] == 2
    billing = reports.summary(start=START, end=END, filters=reports.Filters(team=billing_team.pk))
    assert billing["tickets_created"] == 1 and billing["tickets_solved"] == 0 and billing["csat"]["responses"] == 0
    returns = Ticket.objects.get(external_id="T3").category_id
    by_category = reports.summary(start=START, end=END, filters=reports.Filters(category=returns))
    assert (by_category["tickets_created"], by_category["tickets_solved"]) == (1, 1)  # T3 created, T4 solved
    assert reports.summary(start=START, end=END, filters=reports.Filters(channel="web_chat"))["tickets_created"] == 0


def test_sla_attainment_counts_outcomes_decided_in_the_range_and_skips_paused_clocks(imported):
    SlaClock.objects.all().delete()
    t1, t2, t5 = (imported[ref] for ref in ("T1", "T2", "T5"))
    local = lambda *args: datetime(2026, *args, tzinfo=SHANGHAI)  # noqa: E731
    made = dict(metric="first_response", target_seconds=60, started_at=local(11, 2, 9), due_at=local(11, 2, 9, 1))
    SlaClock.objects.create(ticket=t1, fulfilled_at=local(11, 2, 9, 0, 30), **made)  # met
    SlaClock.objects.create(ticket=t2, breached_at=local(11, 3, 0, 1), fulfilled_at=local(11, 3, 0, 30), **made)  # late
    SlaClock.objects.create(ticket=t5, paused_at=local(11, 4, 10, 30), **made)  # paused: no outcome yet
    SlaClock.objects.create(ticket=t5, breached_at=local(11, 9, 1), **{**made, "metric": "resolution"})  # after the range
    r = reports.summary(start=START, end=END)
    assert r["sla"]["first_response"] == {"met": 1, "breached": 1, "attainment": 0.5}
    assert r["sla"]["resolution"] == {"met": 0, "breached": 0, "attainment": None}


def test_escalations_by_level(imported):
    t1 = imported["T1"]
    local = lambda *args: datetime(2026, *args, tzinfo=SHANGHAI)  # noqa: E731
    Escalation.objects.create(ticket=t1, kind=Escalation.Kind.AUTOMATIC, level=1, created_at=local(11, 3, 9))
    Escalation.objects.create(ticket=t1, kind=Escalation.Kind.MANUAL, level=1, created_at=local(11, 4, 9))
    Escalation.objects.create(ticket=t1, kind=Escalation.Kind.AUTOMATIC, level=0, created_at=local(11, 9, 9))  # after
    assert reports.summary(start=START, end=END)["escalations"] == {"0": 0, "1": 1, "2": 0, "3": 0, "manual": 1}


def test_a_range_with_no_tickets(db):
    r = reports.summary(start=date(2030, 1, 1), end=date(2030, 1, 31))
    assert r["tickets_created"] == 0 and r["tickets_solved"] == 0
    assert r["resolution_rate"] is None and r["fcr_rate"] is None and r["reopen_rate"] is None
    assert r["csat"] == {"responses": 0, "average": None, "satisfied_share": None}
    assert r["qa"] == {"reviews": 0, "average_score": None}
    assert r["hourly"] == [0] * 24 and r["top_categories"] == [] and r["rising_categories"] == []


def test_the_services_count_public_replies_and_reopens(alice, support_team):
    from tickets import services

    from ..factories import CustomerFactory

    ticket = services.open_ticket(customer=CustomerFactory(), subject="s", channel="email", body="你好", team=support_team)
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="您好")
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="备注", internal=True)
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="已解决", status_after="solved")
    services.post_message(ticket=ticket, author_kind="customer", body="还是不行")  # reopens
    ticket.refresh_from_db()
    assert (ticket.public_replies, ticket.reopens) == (2, 1)  # the note is not a reply


def test_the_import_computes_the_counters_from_messages_and_events(imported):
    counters = {ref: (t.public_replies, t.reopens) for ref, t in imported.items()}
    assert counters["T1"] == (1, 0) and counters["T2"] == (2, 0) and counters["T5"] == (2, 1) and counters["T6"] == (0, 0)


def test_percentiles_interpolate_as_postgresql_does():
    assert reports.percentile([1.0], 0.9) == 1.0
    assert reports.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert reports.percentile([10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == pytest.approx(46.0)


def test_a_range_too_long_or_backwards_is_refused(db):
    from helpdesk.errors import DomainError

    with pytest.raises(DomainError):
        reports.summary(start=END, end=START)
    with pytest.raises(DomainError):
        reports.summary(start=START, end=START + timedelta(days=reports.MAX_DAYS))


# --- the API -------------------------------------------------------------------------------


def test_the_summary_api_for_an_integration(api, imported):
    response = api.get("/api/v1/reports/summary", {"from": "2026-11-02", "to": "2026-11-08"})
    assert response.status_code == 200
    body = response.json()
    assert body["tickets_created"] == 5 and body["previous"]["tickets_created"] == 2
    assert set(body["sla"]) >= {"first_response", "resolution"} and len(body["hourly"]) == 24


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "2026-11-08"}, "from"),
        ({"from": "2026-11-32", "to": "2026-11-08"}, "from"),
        ({"from": "2026-11-09", "to": "2026-11-08"}, "to"),
        ({"from": "2026-11-02", "to": "2026-11-08", "channel": "fax"}, "channel"),
        ({"from": "2026-11-02", "to": "2026-11-08", "category": "nope"}, "category"),
        ({"from": "2026-11-02", "to": "2026-11-08", "team": "99999999999999999999"}, "team"),
        ({"from": "1900-01-01", "to": "1900-01-02"}, "from"),
    ],
)
def test_bad_queries_get_400_naming_the_field(api, db, query, field):
    response = api.get("/api/v1/reports/summary", query)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_a_lead_sees_their_team_and_an_agent_nothing(lena, alice, billing_team, imported):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(lena.user)
    query = {"from": "2026-11-02", "to": "2026-11-08"}
    assert client.get("/api/v1/reports/summary", query).json()["tickets_created"] == 4  # Support only
    assert client.get("/api/v1/reports/summary", {**query, "team": billing_team.pk}).status_code == 403
    client.force_authenticate(alice.user)
    assert client.get("/api/v1/reports/summary", query).status_code == 403


def test_the_summary_costs_a_fixed_number_of_queries(api, imported, django_assert_max_num_queries):
    with django_assert_max_num_queries(60):
        api.get("/api/v1/reports/summary", {"from": "2026-11-02", "to": "2026-11-08"})


# --- found in review ----------------------------------------------------------------------


def test_a_customer_writing_after_a_solve_counts_as_a_reopen_in_an_import(alice, support_team):
    data = json.loads(line("R1", "11-02 09:00", ["11-02 09:10"], [("solved", "11-02 10:00"), ("solved", "11-03 10:00")]))
    data["messages"].append({"author": "customer", "body": "还是不行", "sent_at": at("11-02 18:00")})
    import_tickets([json.dumps(data)])
    assert Ticket.objects.get(external_id="R1").reopens == 1


def test_importing_the_same_file_again_keeps_what_the_helpdesk_counted_since(alice, support_team):
    from tickets import services

    data = [line("R2", "11-02 09:00", ["11-02 09:10"], [("solved", "11-02 10:00")])]
    import_tickets(data)
    ticket = Ticket.objects.get(external_id="R2")
    services.post_message(ticket=ticket, author_kind="customer", body="还是不行")  # reopens
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="再试一次", status_after="solved")
    import_tickets(data)
    ticket.refresh_from_db()
    assert (ticket.public_replies, ticket.reopens) == (2, 1)
