"""SLA clocks as our service standard defines them, and the escalation plan at breach.

The shipped policies: first response web chat 15 s, email 12 h (VIP 4 h); resolution in
cn-workweek business hours (urgent 4 h, high 1 day, normal 3 days, low 5 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from helpdesk.models import Channel, Notification
from tickets import services, sla
from tickets.models import Category, Escalation, SlaClock, SlaMetric, SlaPolicy, Ticket

from ..factories import CustomerFactory, UserFactory

S = Ticket.Status
M = SlaMetric
SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def open_ticket(channel=Channel.WEB_CHAT, priority="normal", tier="standard", team=None, category=None) -> Ticket:
    return services.open_ticket(
        customer=CustomerFactory(tier=tier), subject="订单没收到", channel=channel, body="我的快递到哪了？",
        priority=priority, team=team, category=category,
    )


def clock(ticket: Ticket, metric: str) -> SlaClock:
    return ticket.sla_clocks.filter(metric=metric).latest("pk")


def reply(ticket, agent, **kwargs):
    return services.post_message(ticket=ticket, author_kind="agent", agent=agent, body="您好，我来查一下", **kwargs)


def customer_writes(ticket):
    return services.post_message(ticket=ticket, author_kind="customer", body="还在吗？")


# --- policies and targets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "tier", "seconds"),
    [(Channel.WEB_CHAT, "standard", 15), (Channel.APP_CHAT, "standard", 20), (Channel.WECHAT, "standard", 30),
     (Channel.DOUYIN, "standard", 3600), (Channel.EMAIL, "standard", 12 * 3600), (Channel.EMAIL, "vip", 4 * 3600)],
)
@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_the_first_response_target_follows_the_channel_and_tier(channel, tier, seconds):
    first = clock(open_ticket(channel=channel, tier=tier), M.FIRST_RESPONSE)
    assert first.due_at == local(2026, 11, 24, 10) + timedelta(seconds=seconds)
    assert first.calendar is None  # calendar time


@time_machine.travel(local(2026, 11, 27, 16), tick=False)  # a Friday afternoon
def test_resolution_counts_business_hours_over_the_weekend():
    ticket = open_ticket(priority="urgent")
    assert clock(ticket, M.RESOLUTION).due_at == local(2026, 11, 30, 11)  # 2 h Friday, 2 h Monday


@time_machine.travel(local(2026, 9, 30, 17), tick=False)
def test_resolution_skips_national_day_week():
    ticket = open_ticket(priority="high")  # one business day: 1 h on 30 Sept, 8 h after the holiday
    assert clock(ticket, M.RESOLUTION).due_at == local(2026, 10, 8, 17)


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_an_account_security_ticket_is_urgent_whatever_it_was_filed_as():
    ticket = open_ticket(priority="low", category=Category.objects.get(code="account_stolen"))
    assert ticket.priority == "urgent"
    assert clock(ticket, M.RESOLUTION).target_seconds == 4 * 3600


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_an_edited_policy_applies_to_the_next_ticket_at_once():
    # Running clocks follow the edit too, in a task after commit: tests/tickets/test_sla_reschedule.py.
    SlaPolicy.objects.get(name="网页在线客服").targets.filter(metric=M.FIRST_RESPONSE).update(seconds=999)
    sla.forget_policies()
    assert clock(open_ticket(), M.FIRST_RESPONSE).target_seconds == 999


# --- the life of a clock ----------------------------------------------------------------------


def test_a_public_reply_fulfils_the_first_response_and_an_internal_note_does_not(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.shift(5)
        reply(ticket, alice, internal=True)
        assert clock(ticket, M.FIRST_RESPONSE).fulfilled_at is None
        traveller.shift(5)
        reply(ticket, alice)
    first = clock(ticket, M.FIRST_RESPONSE)
    assert first.fulfilled_at == local(2026, 11, 24, 10, 0, 10) and first.breached_at is None
    assert first.next_check_at is None


def test_a_late_reply_is_recorded_as_a_breach(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.shift(40)
        reply(ticket, alice)
    assert clock(ticket, M.FIRST_RESPONSE).breached_at == local(2026, 11, 24, 10, 0, 15)


def test_each_unanswered_customer_message_run_gets_one_next_response_clock(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        reply(ticket, alice)
        traveller.shift(60)
        customer_writes(ticket)
        traveller.shift(5)
        customer_writes(ticket)  # still the same wait: no second clock
        assert ticket.sla_clocks.filter(metric=M.NEXT_RESPONSE).count() == 1
        assert clock(ticket, M.NEXT_RESPONSE).due_at == local(2026, 11, 24, 10, 1, 15)  # from the oldest
        traveller.shift(5)
        reply(ticket, alice)
        assert clock(ticket, M.NEXT_RESPONSE).fulfilled_at is not None
        customer_writes(ticket)
    assert ticket.sla_clocks.filter(metric=M.NEXT_RESPONSE).count() == 2


def test_pending_on_the_customer_pauses_resolution_and_the_wait_is_added_back(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket(priority="urgent")  # due 14:00
        reply(ticket, alice)
        traveller.move_to(local(2026, 11, 24, 11))
        services.change_status(ticket=ticket, status=S.PENDING)
        assert clock(ticket, M.RESOLUTION).paused_at == local(2026, 11, 24, 11)
        assert clock(ticket, M.RESOLUTION).next_check_at is None
        traveller.move_to(local(2026, 11, 25, 9, 30))
        customer_writes(ticket)  # wakes the ticket: 3 business hours were left
    resolution = clock(ticket, M.RESOLUTION)
    assert resolution.paused_at is None
    assert resolution.due_at == local(2026, 11, 25, 12, 30)


def test_solving_fulfils_resolution_and_a_reopen_resumes_it(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket(priority="urgent")
        reply(ticket, alice)
        traveller.move_to(local(2026, 11, 24, 11))
        services.change_status(ticket=ticket, status=S.SOLVED)
        assert clock(ticket, M.RESOLUTION).fulfilled_at == local(2026, 11, 24, 11)
        traveller.move_to(local(2026, 11, 24, 15))
        customer_writes(ticket)  # "it broke again": reopened with the 3 hours left
    resolution = clock(ticket, M.RESOLUTION)
    assert ticket.sla_clocks.filter(metric=M.RESOLUTION).count() == 1
    assert (resolution.fulfilled_at, resolution.due_at) == (None, local(2026, 11, 24, 18))


def test_closing_stops_every_clock(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False):
        ticket = open_ticket()
        services.change_status(ticket=ticket, status=S.SOLVED)
        services.change_status(ticket=ticket, status=S.CLOSED)
    assert not ticket.sla_clocks.filter(fulfilled_at=None, stopped_at=None).exists()
    assert not ticket.sla_clocks.filter(next_check_at__isnull=False).exists()


def test_raising_the_priority_mid_ticket_keeps_the_time_already_used(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket(priority="normal")  # 27 business hours
        traveller.move_to(local(2026, 11, 24, 12))
        services.update_ticket(ticket=ticket, changes={"priority": "urgent"})
    resolution = clock(ticket, M.RESOLUTION)
    assert resolution.target_seconds == 4 * 3600
    assert resolution.due_at == local(2026, 11, 24, 14)  # 2 of its 4 hours were used


def test_requester_wait_and_agent_work_time_are_recorded(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.shift(600)
        reply(ticket, alice, status_after=S.PENDING)  # 10 min new
        traveller.shift(3600)
        customer_writes(ticket)  # 1 h pending: the requester was not waiting
        traveller.shift(300)
        services.change_status(ticket=ticket, status=S.ON_HOLD)  # 5 min open
        traveller.shift(1200)
        services.change_status(ticket=ticket, status=S.SOLVED)  # 20 min on hold
    ticket.refresh_from_db()
    assert ticket.requester_wait_seconds == 600 + 300 + 1200
    assert ticket.agent_work_seconds == 600 + 300


# --- breach and escalation --------------------------------------------------------------------


@pytest.fixture
def plan(support_team, billing_team, lena, ada, settings):
    settings.SLA_MIN_WARNING_LEAD_SECONDS = 0  # warn even 3 s ahead, to see every stage
    manager = UserFactory(username="mia", email="mia@example.com")
    support_team.manager = manager
    support_team.save()
    SlaPolicy.objects.filter(name="网页在线客服").update(escalation_team=billing_team, level2_after=600, level3_after=1800)
    sla.forget_policies()
    return manager


def run_checks(at: datetime) -> list[Escalation]:
    made = []
    for pk, _at in sla.claim_due_clocks(now=at):
        made += sla.check_clock(clock_id=pk, now=at)
    return made


def test_the_escalation_plan_runs_level_by_level_and_only_once(
    plan, alice, lena, ada, support_team, billing_team, django_capture_on_commit_callbacks
):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
        services.assign_ticket(ticket=ticket, agent=alice)
    first = clock(ticket, M.FIRST_RESPONSE)
    assert first.warn_at == start + timedelta(seconds=12)  # 80 % of 15 s

    assert [e.level for e in run_checks(start + timedelta(seconds=12))] == [0]
    assert Notification.objects.get(kind="sla_level_0").recipient == alice.user

    assert [e.level for e in run_checks(start + timedelta(seconds=16))] == [1]
    ticket.refresh_from_db()
    assert ticket.priority == "high"  # raised one step
    assert Notification.objects.get(kind="sla_level_1").recipient == lena.user
    assert run_checks(start + timedelta(seconds=17)) == []  # nothing new is due

    with django_capture_on_commit_callbacks(execute=True):
        assert [e.level for e in run_checks(start + timedelta(seconds=15 + 600))] == [2]
    ticket.refresh_from_db()
    assert ticket.team == billing_team
    level2 = Escalation.objects.get(level=2)
    assert (level2.from_team, level2.to_team) == (support_team, billing_team)
    assert Notification.objects.get(kind="sla_level_2").recipient == plan
    assert "mia@example.com" in [m.to[0] for m in mail.outbox]

    assert [e.level for e in run_checks(start + timedelta(days=1))] == [3]
    assert set(Notification.objects.filter(kind="sla_level_3").values_list("recipient__username", flat=True)) == {"ada"}
    assert clock(ticket, M.FIRST_RESPONSE).next_check_at is None  # the plan is done
    assert run_checks(start + timedelta(days=2)) == []
    assert Escalation.objects.filter(ticket=ticket).count() == 4


def test_a_sweep_that_comes_late_catches_up_every_stage_at_once(plan, support_team):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
    # the broker was down for an hour: breach, level 2 and 3 are all due
    made = run_checks(start + timedelta(hours=1))
    assert [e.level for e in made] == [1, 2, 3]  # a warning this late is pointless: skipped
    assert not ticket.escalations.filter(level=0).exists()


def test_checking_a_clock_twice_or_a_repeated_task_changes_nothing(plan, support_team):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
    first = clock(ticket, M.FIRST_RESPONSE)
    at = start + timedelta(seconds=20)
    assert len(sla.check_clock(clock_id=first.pk, now=at)) == 1
    assert sla.check_clock(clock_id=first.pk, now=at) == []
    assert Escalation.objects.filter(ticket=ticket, level=1).count() == 1
    assert Notification.objects.filter(kind="sla_level_1").count() == 1


def test_a_second_sweep_at_the_same_moment_claims_nothing(support_team):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        open_ticket(team=support_team)
    at = start + timedelta(seconds=20)
    assert len(sla.claim_due_clocks(now=at)) == 1
    assert sla.claim_due_clocks(now=at) == []  # claimed: a second beat hands out nothing
    assert len(sla.claim_due_clocks(now=at + sla.claim_lease())) == 1  # a lost task is retried later


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_a_warning_comes_only_with_a_minute_left_to_act():
    chat, email = open_ticket(), open_ticket(channel=Channel.EMAIL)
    assert clock(chat, M.FIRST_RESPONSE).warn_at is None  # 15 s: the breach is the first stage
    assert clock(email, M.FIRST_RESPONSE).warn_at == local(2026, 11, 24, 10) + timedelta(hours=12 * 0.8)


def test_a_reply_in_time_means_no_escalation(alice, support_team):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
        reply(ticket, alice)
    assert run_checks(start + timedelta(minutes=5)) == []


def test_the_sweep_finds_due_clocks_by_index_not_by_scanning_tickets(django_assert_max_num_queries, settings):
    settings.SLA_MIN_WARNING_LEAD_SECONDS = 0
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            open_ticket()
    with django_assert_max_num_queries(4):
        assert len(sla.claim_due_clocks(now=start + timedelta(seconds=14))) == 5  # the warnings


def test_a_check_that_dies_half_way_leaves_nothing_and_the_retry_escalates_once(plan, support_team, monkeypatch):
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
    first = clock(ticket, M.FIRST_RESPONSE)

    def die(**kwargs):
        raise SystemExit("worker killed")  # after the escalation row and the priority change were written

    monkeypatch.setattr(sla, "notify", die)
    with pytest.raises(SystemExit):
        sla.check_clock(clock_id=first.pk, now=start + timedelta(seconds=20))
    assert not Escalation.objects.exists()
    ticket.refresh_from_db()
    assert ticket.priority == "normal" and clock(ticket, M.FIRST_RESPONSE).breached_at is None
    monkeypatch.undo()
    assert [e.level for e in sla.check_clock(clock_id=first.pk, now=start + timedelta(seconds=21))] == [1]
    assert Escalation.objects.filter(ticket=ticket).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_and_two_checks_at_the_same_moment_escalate_once(support_team):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite runs one writer at a time)")
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        tickets = [open_ticket(team=support_team) for _ in range(20)]
    at = start + timedelta(seconds=20)

    def sweep(_):
        try:
            return [pk for pk, _at in sla.claim_due_clocks(now=at)]
        finally:
            connections.close_all()

    def check(pk):
        try:
            return len(sla.check_clock(clock_id=pk, now=at))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(sweep, range(2))
        assert not set(first) & set(second) and len(first) + len(second) == 20
        made = list(pool.map(check, [*first, *second, *first, *second]))
    assert sum(made) == 20
    assert Escalation.objects.filter(level=1).count() == 20 == len(tickets)


def test_tickets_arrive_while_the_broker_is_down_and_the_sweep_catches_up(
    support_team, monkeypatch, django_capture_on_commit_callbacks
):
    from tickets.tasks import check_sla_clock_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(check_sla_clock_task, "apply_async", broker_down)
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket(team=support_team)  # the ETA task cannot be queued: the ticket still opens
    assert ticket.pk and clock(ticket, M.FIRST_RESPONSE).next_check_at is not None
    assert [e.level for e in run_checks(start + timedelta(minutes=5))] == [1]  # the first sweep after


@pytest.fixture
def queued(monkeypatch):
    """The check tasks handed to the broker, as (clock id, eta); eta None for an immediate batch."""
    from tickets.tasks import check_sla_clock_task, check_sla_clocks_task

    sent = []
    monkeypatch.setattr(check_sla_clock_task, "apply_async", lambda args, eta, **kw: sent.append((args[0], eta)))
    monkeypatch.setattr(check_sla_clocks_task, "apply_async", lambda args, **kw: sent.extend((pk, None) for pk in args[0]))
    return sent


@pytest.fixture
def eta_tasks(settings):
    """The design before the deadline runner, still selectable: a 10 s sweep looking 13 s ahead."""
    settings.SLA_SWEEP_SECONDS, settings.SLA_PRECISE_HORIZON_SECONDS = 10, 13


def test_a_chat_deadline_beyond_the_next_sweep_costs_the_request_no_task_and_the_sweep_queues_it_on_time(
    queued, eta_tasks, settings, django_capture_on_commit_callbacks
):
    from tickets.tasks import sweep_sla_clocks_task

    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket()  # a 15-second first response: further than the horizon
    assert queued == []
    due = clock(ticket, M.FIRST_RESPONSE)
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        assert sweep_sla_clocks_task() == 0  # 14 s ahead: the next sweep still sees it in time
    with time_machine.travel(start + timedelta(seconds=11), tick=False):
        assert sweep_sla_clocks_task() == 1
        assert sweep_sla_clocks_task() == 0  # claimed: the next beat does not queue it twice
    assert queued == [(due.pk, due.due_at)]  # at the deadline itself, not at the sweep
    with time_machine.travel(start + timedelta(seconds=15) + sla.claim_lease(), tick=False):
        assert sweep_sla_clocks_task() == 1  # the task was lost: handed out again after the claim
    assert queued[-1] == (due.pk, None)


def test_a_deadline_sooner_than_the_next_sweep_gets_its_task_from_the_request(
    queued, eta_tasks, django_capture_on_commit_callbacks
):
    policy = SlaPolicy.objects.create(name="test: 5 s", position=0, channels=["other"])
    policy.targets.create(metric="first_response", seconds=5)
    sla.forget_policies()
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket(channel="other")
    assert queued == [(clock(ticket, M.FIRST_RESPONSE).pk, start + timedelta(seconds=5))]


def test_a_breach_is_announced_to_webhook_subscribers(support_team):
    from helpdesk.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(name="crm", url="https://crm.example.com/hook", events=["sla.breached", "escalation.created"])
    start = local(2026, 11, 24, 10)
    with time_machine.travel(start, tick=False):
        ticket = open_ticket(team=support_team)
    run_checks(start + timedelta(seconds=20))
    events = {d.event: d.payload["data"] for d in WebhookDelivery.objects.all()}
    assert events["sla.breached"]["metric"] == "first_response"
    assert events["sla.breached"]["ticket"]["reference"] == ticket.reference
    assert events["escalation.created"]["level"] == 1


# --- found in review ----------------------------------------------------------------------------


def test_a_late_reply_that_solves_records_the_breach_and_starts_no_update_clock(alice):
    policy = SlaPolicy.objects.get(name="网页在线客服")
    policy.targets.create(metric=M.PERIODIC_UPDATE, seconds=600)
    sla.forget_policies()
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.shift(40)
        reply(ticket, alice, status_after=S.SOLVED)
    first = clock(ticket, M.FIRST_RESPONSE)
    assert first.fulfilled_at == local(2026, 11, 24, 10, 0, 40) and first.breached_at is not None
    assert not ticket.sla_clocks.filter(fulfilled_at=None, stopped_at=None).exists()


def test_a_clock_met_late_and_reopened_is_checked_without_looping(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket(priority="urgent")  # due 14:00
        reply(ticket, alice)
        traveller.move_to(local(2026, 11, 24, 15))
        services.change_status(ticket=ticket, status=S.SOLVED)  # an hour late
        traveller.move_to(local(2026, 11, 24, 16))
        customer_writes(ticket)
    resolution = clock(ticket, M.RESOLUTION)
    assert resolution.breached_at is not None and resolution.next_check_at is None
    assert sla.check_clock(clock_id=resolution.pk, now=local(2026, 11, 24, 17)) == []
    assert clock(ticket, M.RESOLUTION).next_check_at is None


def test_reopening_a_ticket_solved_while_pending_does_not_count_the_pending_time(alice):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket(priority="urgent")  # due 14:00
        reply(ticket, alice)
        traveller.move_to(local(2026, 11, 24, 11))
        services.change_status(ticket=ticket, status=S.PENDING)  # 3 h left
        traveller.move_to(local(2026, 11, 24, 15))
        services.change_status(ticket=ticket, status=S.SOLVED)
        traveller.move_to(local(2026, 11, 24, 16))
        customer_writes(ticket)
    assert clock(ticket, M.RESOLUTION).due_at == local(2026, 11, 25, 10)  # 2 h today, 1 h tomorrow


def test_a_priority_change_keeps_the_escalated_teams_clock(alice, support_team, billing_team):
    ticket = open_ticket(team=support_team)
    services.escalate_ticket(ticket=ticket, team=billing_team, reason="退款核对")
    services.update_ticket(ticket=ticket, changes={"priority": "high"})
    assert clock(ticket, M.HANDOVER).is_running


def test_an_emptied_calendar_does_not_stop_tickets_coming_in():
    from helpdesk.models import BusinessCalendar

    BusinessCalendar.objects.get(slug="cn-workweek").hours.all().delete()
    BusinessCalendar.objects.filter(slug="cn-workweek").update(workday_hours="")
    BusinessCalendar.objects.get(slug="cn-workweek").dates.all().delete()
    BusinessCalendar.objects.get(slug="cn-workweek").save()
    with time_machine.travel(local(2026, 11, 24, 10), tick=False):
        ticket = open_ticket(priority="urgent")
    assert clock(ticket, M.RESOLUTION).due_at == local(2026, 11, 24, 14)  # counted in calendar time
