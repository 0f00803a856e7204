"""Running SLA clocks follow an edited calendar or policy (docs/sla.md).

A calendar edit (a holiday, other hours, a make-up workday) or a policy edit (targets,
conditions, order, calendar) moves the deadlines of clocks already running: the business time
used so far is kept, the time left is counted on the new calendar, or against the new target.
Breached, fulfilled and stopped clocks are left as they are; escalations already sent are not
sent again. Up to 100k clocks can be touched, so the work runs after commit in a task, a batch
of clocks a run, each batch a constant number of queries, the task queuing itself for the next.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from helpdesk.calendars import Schedule, business_seconds_between, schedule_to_data

from . import sla
from .models import SlaClock, SlaMetric

BATCH = 500
RETARGETED = ["policy", "target_seconds", "calendar", "due_at", "warn_at", "next_check_at", "scheduled_at", "stopped_at"]


def _candidates(after_pk: int) -> Q:
    """Running, not yet breached clocks after `after_pk`; a hand-over keeps its team's target."""
    return Q(pk__gt=after_pk, fulfilled_at=None, stopped_at=None, breached_at=None) & ~Q(metric=SlaMetric.HANDOVER)


def _batch(condition: Q, batch_size: int) -> list[SlaClock]:
    """The next clocks in id order, locked: a ticket event touching one waits for this batch."""
    queryset = SlaClock.objects.select_for_update(of=("self",)).filter(condition).order_by("pk")
    return list(queryset.select_related("policy", "calendar", "ticket__customer")[:batch_size])


# --- a calendar was edited ---------------------------------------------------------------


def queue_calendar_reschedule(calendar_id: int, before: Schedule, changed_at: datetime) -> None:
    """The listener helpdesk.services calls after a calendar edit commits: queue the first batch."""
    from .tasks_reschedule import reschedule_calendar_clocks_task

    reschedule_calendar_clocks_task.delay(calendar_id, schedule_to_data(before), changed_at.isoformat(), 0)


@transaction.atomic
def reschedule_calendar_clocks(
    *, calendar_id: int, before: Schedule, changed_at: datetime, after_pk: int = 0, batch_size: int = BATCH
) -> int | None:
    """Recompute the deadlines of one batch of running clocks counted on the calendar.

    Each clock keeps the business time it had left at `changed_at` on the calendar as it was
    (`before`; a paused clock: at its pause), counted from then on the calendar as it is now.
    Clocks whose deadline was computed after the change (`scheduled_at`) are skipped, so a
    repeated batch, or a clock a ticket event moved meanwhile, is not moved twice. A clock
    already past due at the change stays due then (the sweep breaches it). Returns the last
    id looked at, or None when no clock is left.
    """
    condition = _candidates(after_pk) & Q(calendar_id=calendar_id)
    clocks = _batch(condition, batch_size)
    if not clocks:
        return None
    moved = []
    for clock in clocks:
        if clock.scheduled_at is not None and clock.scheduled_at >= changed_at:
            continue
        anchor = clock.paused_at or changed_at
        if clock.due_at <= anchor:
            continue
        left = business_seconds_between(before, anchor, clock.due_at)
        sla._schedule(clock, anchor, left, sla._warn_share(clock))
        if clock.paused_at is not None:
            clock.next_check_at = None
        moved.append(clock)
    _save(moved)
    return clocks[-1].pk


# --- a policy was edited -----------------------------------------------------------------


def queue_policy_reschedule() -> None:
    """After a policy edit commits, every running clock takes the targets its ticket's policy holds now."""
    from .tasks_reschedule import retarget_clocks_task

    changed_at = timezone.now()
    transaction.on_commit(lambda: retarget_clocks_task.delay(changed_at.isoformat(), 0), robust=True)


@transaction.atomic
def retarget_clocks(*, changed_at: datetime, after_pk: int = 0, batch_size: int = BATCH) -> int | None:
    """Give one batch of running clocks the targets of the policy each ticket matches now
    (sla.retarget: time used by `changed_at` kept). Idempotent: a clock already on its
    target is left alone. Returns the last id looked at, or None when no clock is left."""
    sla.forget_policies()  # this process may hold the policies from before the edit
    clocks = _batch(_candidates(after_pk), batch_size)
    if not clocks:
        return None
    moved = []
    for clock in clocks:
        ticket = clock.ticket
        if sla.retarget(clock, sla.rule_for(ticket, ticket.customer.tier), ticket.priority, changed_at):
            moved.append(clock)
    _save(moved)
    return clocks[-1].pk


def _save(clocks: list[SlaClock]) -> None:
    if clocks:
        SlaClock.objects.bulk_update(clocks, RETARGETED)
        sla._precise(clocks)
