"""Running clocks follow an edited calendar or policy (docs/sla.md): time used is kept, the
time left is counted on the new calendar or against the new target; breached, fulfilled and
escalated clocks keep what happened. cn-workweek: Monday to Friday 09:00-18:00, Asia/Shanghai.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import BusinessCalendar, CalendarDate, Channel
from helpdesk.queries import read_schedule, schedule_for
from helpdesk.services import record_calendar_change
from tickets import services, sla, sla_reschedule, tasks_reschedule
from tickets.models import Escalation, SlaClock, SlaMetric, SlaPolicy, Ticket

from ..factories import CustomerFactory

M = SlaMetric
SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def workweek() -> BusinessCalendar:
    return BusinessCalendar.objects.get(slug="cn-workweek")


@pytest.fixture
def queued(monkeypatch) -> list:
    """Tasks the recompute queues, recorded instead of sent; drain() runs them in order."""
    calls: list = []
    for task in (tasks_reschedule.reschedule_calendar_clocks_task, tasks_reschedule.retarget_clocks_task):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: calls.append((task, args)))
    return calls


def drain(calls: list) -> int:
    ran = 0
    while calls:
        task, args = calls.pop(0)
        task(*args)  # runs in this process; the next batch it queues lands in `calls`
        ran += 1
    return ran


def open_ticket(priority="normal", channel=Channel.WEB_CHAT) -> Ticket:
    return services.open_ticket(
        customer=CustomerFactory(), subject="订单没收到", channel=channel, body="我的快递到哪了？", priority=priority
    )


def resolution(ticket: Ticket) -> SlaClock:
    return ticket.sla_clocks.get(metric=M.RESOLUTION)


def edit_calendar(calendar: BusinessCalendar, change, django_capture_on_commit_callbacks) -> bool:
    """An edit as the admin and the statutory sync make it: rows written, then the service."""
    before = read_schedule(calendar)
    with django_capture_on_commit_callbacks(execute=True):
        change()
        return record_calendar_change(calendar=calendar, before=before)


# --- a calendar edit ---------------------------------------------------------------------------


def test_a_holiday_added_ahead_moves_the_deadline_and_keeps_the_time_used(
    workweek, queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:  # Tuesday
        ticket = open_ticket()  # normal: 27 business hours, due Friday 10:00
        assert resolution(ticket).due_at == local(2026, 11, 27, 10)
        traveller.move_to(local(2026, 11, 24, 12))  # 2 hours used
        holiday = lambda: workweek.dates.create(date=date(2026, 11, 26), kind=CalendarDate.Kind.CLOSED, name="团建")  # noqa: E731
        assert edit_calendar(workweek, holiday, django_capture_on_commit_callbacks)
        assert resolution(ticket).due_at == local(2026, 11, 27, 10)  # not in the request: queued
        assert drain(queued) == 2  # one batch, then one that finds nothing left
    moved = resolution(ticket)
    assert moved.due_at == local(2026, 11, 30, 10)  # Thursday off: a working day later
    assert sla.remaining_seconds(moved, local(2026, 11, 24, 12)) == 25 * 3600


def test_shorter_hours_and_a_make_up_saturday_move_deadlines_both_ways(workweek, queued, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 12))

        def edit():
            workweek.hours.filter(weekday=2).update(end="17:00")  # Wednesday ends an hour early
            workweek.dates.create(date=date(2026, 11, 28), kind=CalendarDate.Kind.WORKING, name="调休")  # Saturday
            workweek.dates.create(date=date(2026, 11, 27), kind=CalendarDate.Kind.CLOSED, name="调休")  # Friday off

        edit_calendar(workweek, edit, django_capture_on_commit_callbacks)
        drain(queued)
    # Tue 10-18 (8), Wed 9-17 (8), Thu 9-18 (9): 25; Friday off; Saturday 09:00-11:00 the last 2.
    # (From 12:00 on the new calendar the same: the 2 hours used were used on the old one.)
    assert resolution(ticket).due_at == local(2026, 11, 28, 11)


def test_an_edit_that_changes_no_working_time_queues_nothing(workweek, queued, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False):
        open_ticket()
        rename = lambda: BusinessCalendar.objects.filter(pk=workweek.pk).update(name="工作日")  # noqa: E731
        assert not edit_calendar(workweek, rename, django_capture_on_commit_callbacks)
    assert queued == []


def test_a_paused_clock_gets_back_the_time_it_had_left_counted_on_the_new_calendar(
    alice, workweek, queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        services.assign_ticket(ticket=ticket, agent=alice)
        traveller.move_to(local(2026, 11, 24, 12))
        services.change_status(ticket=ticket, status=Ticket.Status.PENDING, actor=alice.user)  # 25 h left
        holiday = lambda: workweek.dates.create(date=date(2026, 11, 25), kind=CalendarDate.Kind.CLOSED, name="团建")  # noqa: E731
        edit_calendar(workweek, holiday, django_capture_on_commit_callbacks)
        drain(queued)
        assert resolution(ticket).next_check_at is None  # still paused
        traveller.move_to(local(2026, 11, 24, 14))
        services.change_status(ticket=ticket, status=Ticket.Status.OPEN, actor=alice.user)
    # From Tuesday 14:00: 4 h Tuesday, Wednesday off, 9 h Thursday, 9 h Friday, 3 h Monday.
    assert resolution(ticket).due_at == local(2026, 11, 30, 12)


def test_running_the_recompute_twice_moves_nothing_twice(workweek, queued, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 12))
        holiday = lambda: workweek.dates.create(date=date(2026, 11, 26), kind=CalendarDate.Kind.CLOSED, name="团建")  # noqa: E731
        edit_calendar(workweek, holiday, django_capture_on_commit_callbacks)
        first_batch = list(queued)
        drain(queued)
        after_once = resolution(ticket).due_at
        queued.extend(first_batch)  # the broker delivers the first batch again
        drain(queued)
    assert resolution(ticket).due_at == after_once == local(2026, 11, 30, 10)


def test_breached_fulfilled_and_escalated_clocks_keep_what_happened(
    alice, support_team, workweek, queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        late = open_ticket(priority="urgent")  # first response 15 s, resolution 4 business hours
        answered = open_ticket()
        services.post_message(ticket=answered, author_kind="agent", agent=alice, body="您好")
        traveller.move_to(local(2026, 11, 24, 14, 30))  # the urgent one's resolution breached at 14:00
        for clock_id, _at in sla.claim_due_clocks(now=local(2026, 11, 24, 14, 30)):
            sla.check_clock(clock_id=clock_id)
        breached = resolution(late)
        assert breached.breached_at == local(2026, 11, 24, 14) and breached.escalation_level == 1
        escalations = Escalation.objects.count()
        fulfilled = answered.sla_clocks.get(metric=M.FIRST_RESPONSE)
        holiday = lambda: workweek.dates.create(date=date(2026, 11, 24), kind=CalendarDate.Kind.CLOSED, name="停电")  # noqa: E731
        edit_calendar(workweek, holiday, django_capture_on_commit_callbacks)
        drain(queued)
        for clock_id, _at in sla.claim_due_clocks(now=local(2026, 11, 24, 14, 31)):
            sla.check_clock(clock_id=clock_id)
    after = resolution(late)
    assert (after.due_at, after.breached_at, after.escalation_level) == (breached.due_at, breached.breached_at, 1)
    assert Escalation.objects.count() == escalations  # nothing sent again
    assert answered.sla_clocks.get(metric=M.FIRST_RESPONSE).fulfilled_at == fulfilled.fulfilled_at


def test_a_batch_costs_the_same_queries_for_10_clocks_or_40(workweek, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False):
        for _ in range(40):
            open_ticket()
        before = read_schedule(workweek)
        workweek.dates.create(date=date(2026, 11, 26), kind=CalendarDate.Kind.CLOSED, name="团建")
        workweek.save(update_fields=["updated_at"])
        changed_at = local(2026, 11, 24, 11)
        schedule_for(BusinessCalendar.objects.get(pk=workweek.pk))  # the edited calendar read once, as any worker would
        counts = []
        for size in (10, 40):
            SlaClock.objects.update(scheduled_at=None)  # both runs have every clock to move
            with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
                last = sla_reschedule.reschedule_calendar_clocks(
                    calendar_id=workweek.pk, before=before, changed_at=changed_at, batch_size=size
                )
            counts.append(len(queries))
        assert last == SlaClock.objects.filter(calendar=workweek).order_by("-pk").values_list("pk", flat=True)[0]
    assert counts[0] == counts[1], counts


def test_the_admin_says_the_recompute_was_queued(client, ada, workweek, queued, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 12))
        client.force_login(ada)
        form = {
            "slug": workweek.slug, "name": workweek.name, "time_zone": "Asia/Shanghai", "holiday_region": "CN",
            "workday_hours": "09:00-18:00", "hours-TOTAL_FORMS": 0, "hours-INITIAL_FORMS": 0,
            "dates-TOTAL_FORMS": 1, "dates-INITIAL_FORMS": 0,
            "dates-0-date": "2026-11-26", "dates-0-kind": "closed", "dates-0-name": "团建", "dates-0-hours": "",
        }
        with django_capture_on_commit_callbacks(execute=True):
            page = client.post(reverse("admin:helpdesk_businesscalendar_change", args=[workweek.pk]), form, follow=True)
        assert "recomputed" in page.content.decode() or "重新计算" in page.content.decode()
        assert [task for task, _args in queued] == [tasks_reschedule.reschedule_calendar_clocks_task]
        drain(queued)
    assert resolution(ticket).due_at == local(2026, 11, 30, 10)


# --- a policy edit -----------------------------------------------------------------------------


def test_editing_a_policy_moves_running_clocks_to_the_new_target_keeping_the_time_used(
    queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()  # normal resolution: 27 business hours
        traveller.move_to(local(2026, 11, 24, 12))
        policy = SlaPolicy.objects.get(pk=resolution(ticket).policy_id)
        with django_capture_on_commit_callbacks(execute=True):
            policy.targets.filter(metric=M.RESOLUTION, priority="normal").update(seconds=9 * 3600)
            sla_reschedule.queue_policy_reschedule()
        drain(queued)
    moved = resolution(ticket)
    assert moved.target_seconds == 9 * 3600
    assert moved.due_at == local(2026, 11, 25, 10)  # 2 of 9 hours used: 6 more Tuesday, 1 Wednesday


def test_a_target_cut_below_the_time_used_is_escalated_by_the_next_sweep(
    support_team, queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 13))  # 3 hours used
        policy = SlaPolicy.objects.get(pk=resolution(ticket).policy_id)
        with django_capture_on_commit_callbacks(execute=True):
            policy.targets.filter(metric=M.RESOLUTION, priority="normal").update(seconds=3600)
            sla_reschedule.queue_policy_reschedule()
        drain(queued)
        assert resolution(ticket).due_at == local(2026, 11, 24, 13)  # due the moment the edit took effect
        traveller.move_to(local(2026, 11, 24, 13, 0, 10))
        for clock_id, _at in sla.claim_due_clocks(now=local(2026, 11, 24, 13, 0, 10)):
            sla.check_clock(clock_id=clock_id)
    assert resolution(ticket).escalation_level == 1
    assert Escalation.objects.filter(clock=resolution(ticket), level=1).exists()


def test_a_policy_placed_first_takes_over_the_running_clocks_of_tickets_it_matches(
    queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        chat, mail = open_ticket(), open_ticket(channel=Channel.EMAIL)
        traveller.move_to(local(2026, 11, 24, 11))
        with django_capture_on_commit_callbacks(execute=True):
            vip = SlaPolicy.objects.create(name="chat first", position=0, channels=[Channel.WEB_CHAT])
            vip.targets.create(metric=M.RESOLUTION, seconds=2 * 3600)
            SlaPolicy.objects.exclude(pk=vip.pk).update(position=5)
            sla_reschedule.queue_policy_reschedule()
        drain(queued)
    assert (resolution(chat).policy_id, resolution(chat).due_at) == (vip.pk, local(2026, 11, 24, 12))
    assert chat.sla_clocks.get(metric=M.FIRST_RESPONSE).stopped_at == local(2026, 11, 24, 11)  # no such target
    assert resolution(mail).policy_id != vip.pk


def test_the_policy_admin_says_running_clocks_are_being_moved(client, ada, queued, django_capture_on_commit_callbacks):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 11))
        client.force_login(ada)
        form = {
            "name": "chat first", "position": 0, "is_active": "on", "channels": [Channel.WEB_CHAT], "warn_at": "0.80",
            "level2_after": 3600, "level3_after": 7200, "targets-TOTAL_FORMS": 1, "targets-INITIAL_FORMS": 0,
            "targets-0-metric": "resolution", "targets-0-seconds": 7200,
        }
        SlaPolicy.objects.update(position=5)
        with django_capture_on_commit_callbacks(execute=True):
            page = client.post(reverse("admin:tickets_slapolicy_add"), form, follow=True)
        assert "background" in page.content.decode() or "后台" in page.content.decode()
        assert [task for task, _args in queued] == [tasks_reschedule.retarget_clocks_task]
        drain(queued)
    assert resolution(ticket).policy.name == "chat first"
    assert resolution(ticket).due_at == local(2026, 11, 24, 12)  # 2 calendar hours, 1 used


# --- escalations outside business hours --------------------------------------------------------


@pytest.fixture
def half_hour_email(workweek) -> SlaPolicy:
    policy = SlaPolicy.objects.create(name="email 30 business minutes", position=0, channels=[Channel.EMAIL], calendar=workweek)
    policy.targets.create(metric=M.FIRST_RESPONSE, seconds=1800, business_hours=True)
    return policy


def escalations_by(now: datetime) -> list[Escalation]:
    with time_machine.travel(now, tick=False):
        made = [e for clock_id, _at in sla.claim_due_clocks(now=now) for e in sla.check_clock(clock_id=clock_id, now=now)]
    return [e for e in made if e.level == 1]


def test_a_deadline_after_hours_escalates_at_the_next_business_instant_not_in_calendar_time(half_hour_email, support_team):
    with time_machine.travel(local(2026, 11, 27, 17, 50), tick=False):  # Friday
        ticket = open_ticket(channel=Channel.EMAIL)
    first = ticket.sla_clocks.get(metric=M.FIRST_RESPONSE)
    assert first.due_at == local(2026, 11, 30, 9, 20)  # 10 minutes Friday, 20 Monday
    assert escalations_by(local(2026, 11, 27, 18, 21)) == []  # not Friday 18:20
    assert escalations_by(local(2026, 11, 30, 9, 19)) == []
    [breach] = escalations_by(local(2026, 11, 30, 9, 20))
    assert breach.clock_id == first.pk and breach.created_at == local(2026, 11, 30, 9, 20)


def test_a_holiday_in_between_pushes_the_escalation_past_it(half_hour_email, support_team):
    with time_machine.travel(local(2026, 9, 30, 17, 50), tick=False):  # the eve of National Day
        ticket = open_ticket(channel=Channel.EMAIL)
    assert ticket.sla_clocks.get(metric=M.FIRST_RESPONSE).due_at == local(2026, 10, 8, 9, 20)
    assert escalations_by(local(2026, 10, 1, 9, 20)) == []
    assert len(escalations_by(local(2026, 10, 8, 9, 20))) == 1


def test_a_24x7_chat_policy_escalates_at_night(support_team):
    always = BusinessCalendar.objects.get(slug="24x7")
    policy = SlaPolicy.objects.create(name="chat round the clock", position=0, channels=[Channel.WEB_CHAT], calendar=always)
    policy.targets.create(metric=M.FIRST_RESPONSE, seconds=1800, business_hours=True)
    with time_machine.travel(local(2026, 11, 28, 2, 0), tick=False):  # Saturday, 2 at night
        ticket = open_ticket()
    assert ticket.sla_clocks.get(metric=M.FIRST_RESPONSE).due_at == local(2026, 11, 28, 2, 30)
    assert len(escalations_by(local(2026, 11, 28, 2, 30))) == 1


def test_the_schedule_survives_the_trip_through_a_task_message(workweek):
    from helpdesk.calendars import schedule_from_data, schedule_to_data

    schedule = read_schedule(workweek)
    assert schedule_from_data(schedule_to_data(schedule)) == schedule
