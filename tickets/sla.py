"""SLA clocks: which policy holds a ticket, when each target falls due, and what a breach sets off.

The ticket services call the `on_*` functions inside their transaction, with the ticket row
locked; `check_clock` is what the sweep and the precise ETA tasks run. Every stage a clock
goes through (warning, breach, level 2, level 3) is a flag on the clock plus an Escalation
row unique per (clock, level), so running a check twice, or two at once, does it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk import webhooks
from helpdesk.calendars import (
    NoWorkingTime,
    add_business_seconds,
    business_seconds_between,
)
from helpdesk.models import BusinessCalendar
from helpdesk.notifications import (
    administrators,
    in_default_language,
    notify,
    team_leads,
)
from helpdesk.process_cache import process_cached
from helpdesk.queries import schedule_for

from .models import Escalation, SlaClock, SlaMetric, SlaPolicy, Ticket
from .payloads import ticket_data

logger = logging.getLogger(__name__)
M = SlaMetric
S = Ticket.Status
P = Ticket.Priority
DEFAULT_PAUSE = (S.PENDING,)
PRIORITY_UP = dict(zip(list(P), [*list(P)[1:], P.URGENT], strict=True))  # one step up, urgent stays
# Clocks due now go to workers in batches this big: small enough that a worker's processes share
# a sweep's clocks (each check takes a few ms), large enough to keep messages few at peak.
CHECK_BATCH = 20


def claim_lease() -> timedelta:
    """How long past its stage's time a handed-out clock stays claimed (SLA_CLAIM_LEASE_SECONDS).

    With ETA tasks on, past the next sweep's horizon too, or that sweep would hand out again
    every clock it looks ahead at.
    """
    seconds = settings.SLA_CLAIM_LEASE_SECONDS
    if settings.SLA_PRECISE_HORIZON_SECONDS:
        seconds = max(seconds, settings.SLA_SWEEP_SECONDS + settings.SLA_PRECISE_HORIZON_SECONDS + 1)
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Rule:
    """A policy read once: conditions, and targets by (metric, priority) with "" for any."""

    policy: SlaPolicy
    category_ids: frozenset[int]
    targets: dict[tuple[str, str], tuple[int, bool]]

    def matches(self, ticket: Ticket, tier: str) -> bool:
        p = self.policy
        return (
            (not p.channels or ticket.channel in p.channels)
            and (not p.priorities or ticket.priority in p.priorities)
            and (not p.tiers or tier in p.tiers)
            and (not self.category_ids or ticket.category_id in self.category_ids)
        )

    def target(self, metric: str, priority: str) -> tuple[int, bool] | None:
        return self.targets.get((metric, priority)) or self.targets.get((metric, ""))


@process_cached(seconds=30)
def rules() -> list[Rule]:
    """Active policies in order, kept per process: every new ticket and reply consults them."""
    policies = SlaPolicy.objects.filter(is_active=True).select_related("calendar").prefetch_related("targets", "categories")
    loaded = [
        Rule(
            policy=policy,
            category_ids=frozenset(c.pk for c in policy.categories.all()),
            targets={(t.metric, t.priority): (t.seconds, t.business_hours) for t in policy.targets.all()},
        )
        for policy in policies
    ]
    return loaded


def forget_policies() -> None:
    """Read the policies again on next use (this process; others within 30 s)."""
    rules.forget()


def rule_for(ticket: Ticket, tier: str | None = None) -> Rule | None:
    tier = tier or ticket.customer.tier
    return next((rule for rule in rules() if rule.matches(ticket, tier)), None)


# --- time ---------------------------------------------------------------------------


def _add(calendar: BusinessCalendar | None, start: datetime, seconds: float) -> datetime:
    if calendar is not None:
        try:
            return add_business_seconds(schedule_for(calendar), start, max(seconds, 0))
        except NoWorkingTime:
            # A calendar emptied by mistake must not stop tickets coming in: count calendar time.
            logger.error("Calendar %s has no working time ahead; SLA targets count calendar time.", calendar.slug)
    return start + timedelta(seconds=max(seconds, 0))


def _between(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> float:
    if calendar is None:
        return (end - start).total_seconds()
    return business_seconds_between(schedule_for(calendar), start, end)


def remaining_seconds(clock: SlaClock, at: datetime) -> float:
    """Target time left at `at` (negative once overdue); a paused clock stopped counting."""
    return _between(clock.calendar, clock.paused_at or at, clock.due_at)


def _schedule(clock: SlaClock, at: datetime, remaining: float, warn_share: float) -> None:
    """Set due (and warning) times for `remaining` target seconds counted from `at`."""
    clock.due_at = _add(clock.calendar, at, remaining)
    clock.scheduled_at = timezone.now()  # which calendar edits this deadline has seen (sla_reschedule)
    lead = (1 - warn_share) * clock.target_seconds  # how long before the deadline the warning comes
    until_warning = remaining - lead
    wanted = clock.warned_at is None and until_warning > 0 and lead >= settings.SLA_MIN_WARNING_LEAD_SECONDS
    clock.warn_at = _add(clock.calendar, at, until_warning) if wanted else None
    clock.next_check_at = next_check(clock)


def next_check(clock: SlaClock) -> datetime | None:
    """When the clock next has something to do; None when it has nothing left."""
    if not clock.is_running or clock.paused_at is not None:
        return None
    if clock.breached_at is None:
        if clock.warned_at is None and clock.warn_at is not None and clock.warn_at < clock.due_at:
            return clock.warn_at
        return clock.due_at
    policy = clock.policy
    if policy is None or clock.escalation_level == 0 or clock.escalation_level >= 3:
        return None  # level 0 and breached: met late, recorded without an escalation plan
    level2 = clock.breached_at + timedelta(seconds=policy.level2_after)
    return level2 if clock.escalation_level < 2 else level2 + timedelta(seconds=policy.level3_after)


def _warn_share(clock: SlaClock) -> float:
    return float(clock.policy.warn_at) if clock.policy is not None else 0.8


def _pause_statuses(clock: SlaClock) -> tuple[str, ...]:
    return tuple(clock.policy.pause_statuses) if clock.policy is not None else DEFAULT_PAUSE


def _precise(clocks: list[SlaClock]) -> None:
    """With ETA tasks on (SLA_PRECISE_HORIZON_SECONDS > 0), a stage due before the next sweep
    could see it gets a task at its exact time, after commit. With the runner alone (0, the
    default) the request queues nothing: the sweep, every second, hands out what is due.
    """
    if not settings.SLA_PRECISE_HORIZON_SECONDS:
        return
    horizon = timezone.now() + timedelta(seconds=settings.SLA_PRECISE_HORIZON_SECONDS)
    soon = [(c.pk, c.next_check_at) for c in clocks if c.next_check_at is not None and c.next_check_at <= horizon]
    if soon:
        transaction.on_commit(lambda: queue_checks(soon), robust=True)


def queue_checks(due: list[tuple[int, datetime]], *, now: datetime | None = None) -> None:
    """Checks for stages due already, in batches; a task at its exact time for each later one."""
    from .tasks import check_sla_clock_task, check_sla_clocks_task

    now = now or timezone.now()
    ready = [pk for pk, at in due if at <= now]
    for start in range(0, len(ready), CHECK_BATCH):
        check_sla_clocks_task.apply_async((ready[start : start + CHECK_BATCH],), retry=False)
    for pk, at in due:
        if at > now:
            check_sla_clock_task.apply_async((pk,), eta=at, retry=False)  # a down broker: the sweep catches up


# --- events, called by tickets.services with the ticket locked ------------------------


def _new_clock(ticket: Ticket, rule: Rule, metric: str, at: datetime) -> SlaClock | None:
    target = rule.target(metric, ticket.priority)
    if target is None:
        return None
    seconds, business = target
    clock = SlaClock(
        ticket=ticket, metric=metric, policy=rule.policy, target_seconds=seconds,
        calendar=rule.policy.calendar if business else None, started_at=at,
    )
    _schedule(clock, at, seconds, float(rule.policy.warn_at))
    if ticket.status in rule.policy.pause_statuses:
        clock.paused_at, clock.next_check_at = at, None
    return clock


def on_ticket_opened(ticket: Ticket, *, at: datetime) -> list[SlaClock]:
    rule = rule_for(ticket)
    if rule is None:
        ticket.opened_clocks = []
        return []
    clocks = [c for c in (_new_clock(ticket, rule, m, at) for m in (M.FIRST_RESPONSE, M.RESOLUTION)) if c]
    SlaClock.objects.bulk_create(clocks)
    _precise(clocks)
    ticket.opened_clocks = clocks  # what the API shows of a ticket it just created, without a query
    return clocks


def _running(ticket: Ticket, *metrics: str) -> list[SlaClock]:
    queryset = SlaClock.objects.filter(ticket=ticket, fulfilled_at=None, stopped_at=None).select_related(
        "policy", "calendar"
    )
    return list(queryset.filter(metric__in=metrics) if metrics else queryset)


def on_customer_message(ticket: Ticket, *, at: datetime) -> None:
    """An unanswered customer message starts a next-response clock, unless one runs already."""
    if ticket.first_response_at is None or _running(ticket, M.NEXT_RESPONSE):
        return
    _start(ticket, M.NEXT_RESPONSE, at)


def on_agent_reply(ticket: Ticket, *, at: datetime) -> None:
    """A public agent reply answers the first or next response and restarts the periodic update."""
    for clock in _running(ticket, M.FIRST_RESPONSE, M.NEXT_RESPONSE, M.PERIODIC_UPDATE):
        _finish(clock, at, fulfilled=True)
    if ticket.status not in (S.SOLVED, S.CLOSED):
        _start(ticket, M.PERIODIC_UPDATE, at)


def _start(ticket: Ticket, metric: str, at: datetime) -> None:
    """Start one clock, if the ticket's policy has a target for the metric."""
    rule = rule_for(ticket)
    clock = _new_clock(ticket, rule, metric, at) if rule else None
    if clock is not None:
        clock.save()
        _precise([clock])


def start_handover(ticket: Ticket, *, team, at: datetime) -> SlaClock:
    """The escalated team's own response target, in calendar time, under the ticket's policy plan."""
    rule = rule_for(ticket)
    policy = rule.policy if rule else None
    clock = SlaClock(
        ticket=ticket, metric=M.HANDOVER, policy=policy, target_seconds=max(team.handover_target_seconds, 1), started_at=at
    )
    _schedule(clock, at, clock.target_seconds, float(policy.warn_at) if policy else 0.8)
    clock.save()
    _precise([clock])
    return clock


def end_handover(ticket: Ticket, *, at: datetime) -> None:
    for clock in _running(ticket, M.HANDOVER):
        _finish(clock, at, fulfilled=True)


def _finish(clock: SlaClock, at: datetime, *, fulfilled: bool) -> None:
    if fulfilled:
        clock.fulfilled_at = at
        if clock.breached_at is None and clock.paused_at is None and at > clock.due_at:
            clock.breached_at = clock.due_at  # late, before a sweep noticed: recorded, not escalated
    else:
        clock.stopped_at = at
    clock.next_check_at = None
    clock.save(update_fields=["fulfilled_at", "stopped_at", "breached_at", "next_check_at"])


def on_status_change(ticket: Ticket, *, old: str, at: datetime) -> None:
    """Solve fulfils resolution, close stops everything, reopen resumes, pause statuses pause."""
    new = ticket.status
    if old == S.SOLVED and new != S.CLOSED:
        reopened = SlaClock.objects.filter(ticket=ticket, metric=M.RESOLUTION, fulfilled_at__isnull=False).order_by("-pk")
        clock = reopened.select_related("policy", "calendar").first()
        if clock is not None and not _running(ticket, M.RESOLUTION):
            # The time while solved does not count: resume from where solving stopped the clock.
            clock.paused_at, clock.fulfilled_at = clock.paused_at or clock.fulfilled_at, None
            clock.save(update_fields=["paused_at", "fulfilled_at"])
    changed = []
    for clock in _running(ticket):
        if new == S.CLOSED or (new == S.SOLVED and clock.metric != M.RESOLUTION):
            _finish(clock, at, fulfilled=False)
        elif new == S.SOLVED:
            _finish(clock, at, fulfilled=True)
        elif new in _pause_statuses(clock) and clock.paused_at is None:
            clock.paused_at, clock.next_check_at = at, None
            changed.append(clock)
        elif new not in _pause_statuses(clock) and clock.paused_at is not None:
            left = _between(clock.calendar, clock.paused_at, clock.due_at)
            clock.paused_at = None
            _schedule(clock, at, left, _warn_share(clock))
            changed.append(clock)
    _save_times(changed)


def on_reclassified(ticket: Ticket, *, at: datetime) -> None:
    """Priority or category changed: running clocks take the targets of the policy now matching,
    keeping the time already used."""
    rule = rule_for(ticket)
    changed, stopped = [], []
    for clock in _running(ticket):
        outcome = retarget(clock, rule, ticket.priority, at)
        if outcome == "stopped":
            stopped.append(clock)
        elif outcome == "changed":
            changed.append(clock)
    _save_times(changed, also=["policy", "target_seconds", "calendar"])
    _save_stopped(stopped)


def retarget(clock: SlaClock, rule: Rule | None, priority: str, at: datetime) -> str:
    """Give a running clock the target `rule` holds for it, keeping the time used by `at`.

    Returns "changed", "stopped" (the policy has no such target any more) or "" (nothing to do,
    so running it twice changes nothing). Writes nothing: the caller saves in bulk. Breached
    clocks keep their breach and their escalation stage; a clock left with no time becomes due
    at `at`, and the next sweep escalates it.
    """
    if clock.metric == M.HANDOVER:
        return ""  # the escalated team's target, not the policy's
    target = rule.target(clock.metric, priority) if rule else None
    if target is None:
        clock.stopped_at, clock.next_check_at = at, None
        return "stopped"
    seconds, business = target
    calendar = rule.policy.calendar if business else None
    if (clock.policy_id, clock.target_seconds, clock.calendar_id) == (rule.policy.pk, seconds, getattr(calendar, "pk", None)):
        return ""
    used = clock.target_seconds - remaining_seconds(clock, at)
    clock.policy, clock.target_seconds, clock.calendar = rule.policy, seconds, calendar
    paused = clock.paused_at
    _schedule(clock, paused or at, seconds - used, float(rule.policy.warn_at))
    if paused is not None:
        clock.next_check_at = None
    return "changed"


def _save_stopped(clocks: list[SlaClock]) -> None:
    if clocks:
        SlaClock.objects.bulk_update(clocks, ["stopped_at", "next_check_at"])


def _save_times(clocks: list[SlaClock], also: list[str] = ()) -> None:
    if clocks:
        SlaClock.objects.bulk_update(clocks, ["paused_at", "due_at", "warn_at", "next_check_at", "scheduled_at", *also])
        _precise(clocks)


# --- the sweep and the check ----------------------------------------------------------


def claim_due_clocks(*, now: datetime, ahead: timedelta = timedelta(0), limit: int = 1000) -> list[tuple[int, datetime]]:
    """Clocks with a stage due by `now + ahead`, as (id, when), claimed so a second sweep skips them.

    The claim lasts `claim_lease()` past the stage's time (or now, if later): a check lost on the
    way or with its worker is handed out again by the first sweep after. A check running holds
    the clock's row lock, which this skips, so a slow check is not handed out twice.
    """
    with transaction.atomic():
        due = SlaClock.objects.select_for_update(skip_locked=True).filter(next_check_at__lte=now + ahead)
        claimed = list(due.order_by("next_check_at").values_list("pk", "next_check_at")[:limit])
        if claimed:
            SlaClock.objects.filter(pk__in=[pk for pk, _at in claimed]).update(
                next_check_at=Greatest(F("next_check_at"), Value(now)) + claim_lease()
            )
    return claimed


def check_clock(*, clock_id: int, now: datetime | None = None) -> list[Escalation]:
    """Take the clock through every stage due by `now`: warning, breach (level 1), level 2, level 3.

    Locks the ticket, then the clock (the services' order). A ticket locked by someone else
    is left for the next run: its claim runs out and the sweep hands it out again.
    """
    now = now or timezone.now()
    ticket_id = SlaClock.objects.filter(pk=clock_id).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        return []
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        ticket = Ticket.objects.select_for_update(of=("self",), skip_locked=True).filter(pk=ticket_id).first()
        if ticket is None:
            return []
        clock = SlaClock.objects.select_for_update(of=("self",)).select_related("policy", "calendar").get(pk=clock_id)
        made = []
        if clock.is_running and clock.paused_at is None:
            made = _advance(clock, ticket, now)
        clock.next_check_at = next_check(clock)
        clock.save(update_fields=["warned_at", "breached_at", "escalation_level", "next_check_at"])
        _precise([clock])
    return made


def _commit_without_waiting_for_disk() -> None:
    """PostgreSQL: this check's commit does not wait for the disk (half a check's time on a busy
    machine, bench/README.md). A database crash can lose the last fraction of a second of
    checks, and it loses each one whole (escalation row, flags and claim together): the claim
    then runs out and the sweep does the check again."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _advance(clock: SlaClock, ticket: Ticket, now: datetime) -> list[Escalation]:
    made = []
    if clock.breached_at is None and clock.warned_at is None and clock.warn_at and clock.warn_at <= now < clock.due_at:
        clock.warned_at = now
        made += _escalate(clock, ticket, 0, now)
    if clock.breached_at is None and clock.due_at <= now:
        clock.breached_at, clock.escalation_level = clock.due_at, 1
        made += _escalate(clock, ticket, 1, now)
        webhooks.emit("sla.breached", {"ticket": ticket_data(ticket), "metric": clock.metric, "due_at": clock.due_at})
    policy = clock.policy
    while policy is not None and clock.breached_at is not None and 1 <= clock.escalation_level < 3:
        stage_at = next_check(clock)
        if stage_at is None or stage_at > now:
            break
        clock.escalation_level += 1
        made += _escalate(clock, ticket, clock.escalation_level, now)
    return made


LEVEL_TEXT = {
    0: _("%(ticket)s: the %(metric)s target is close to breaching (due %(due)s)."),
    1: _("%(ticket)s breached its %(metric)s target (due %(due)s): escalation level 1."),
    2: _("%(ticket)s is still breaching its %(metric)s target: escalation level 2."),
    3: _("%(ticket)s is still breaching its %(metric)s target: escalation level 3."),
}


def _escalate(clock: SlaClock, ticket: Ticket, level: int, now: datetime) -> list[Escalation]:
    from_team = ticket.team
    to_team = clock.policy.escalation_team if level == 2 and clock.policy else None
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                ticket=ticket, clock=clock, kind=Escalation.Kind.AUTOMATIC, level=level, from_team=from_team,
                to_team=to_team, reason=f"sla:{clock.metric}", created_at=now,
            )
    except IntegrityError:
        return []  # done before: the flags on the clock and this row agree
    _apply_level(ticket, level, to_team)
    text = in_default_language(
        LEVEL_TEXT[level], ticket=ticket.reference, metric=SlaMetric(clock.metric).label,
        due=timezone.localtime(clock.due_at).strftime("%Y-%m-%d %H:%M:%S"),
    )
    notify(recipients=_recipients(ticket, level, from_team), kind=f"sla_level_{level}", text=text, ticket=ticket)
    if level > 0:
        webhooks.emit("escalation.created", escalation_data(escalation))
    return [escalation]


def _apply_level(ticket: Ticket, level: int, to_team) -> None:
    changes = {}
    if level == 1 and PRIORITY_UP[ticket.priority] != ticket.priority:
        changes["priority"] = PRIORITY_UP[ticket.priority]
    if level == 2 and to_team is not None and ticket.team_id != to_team.pk:
        changes["team"] = to_team
    if changes:
        for name, value in changes.items():
            setattr(ticket, name, value)
        ticket.updated_at = timezone.now()
        ticket._change_reason = f"sla_escalation:{level}"
        ticket.save()


def _recipients(ticket: Ticket, level: int, team) -> list:
    if level == 0:
        return [ticket.assignee.user] if ticket.assignee_id else list(team_leads(team))
    if level == 1:
        return list(team_leads(team))
    if level == 2:
        return [team.manager] if team is not None and team.manager_id else list(team_leads(team))
    return list(administrators())


def escalation_data(escalation: Escalation) -> dict:
    return {
        "id": escalation.pk,
        "ticket": Ticket(pk=escalation.ticket_id).reference,
        "kind": escalation.kind,
        "level": escalation.level,
        "metric": escalation.clock.metric if escalation.clock_id else None,
        "from_team_id": escalation.from_team_id,
        "to_team_id": escalation.to_team_id,
        "reason": escalation.reason,
        "created_at": escalation.created_at,
        "returned_at": escalation.returned_at,
    }


def clocks_from_history(tickets: list[Ticket], *, now: datetime, tiers: dict[int, str] | None = None) -> list[SlaClock]:
    """First-response and resolution clocks of imported tickets, met or breached as their own
    times say. A breach in the past fires nothing; a clock still running is watched from now on."""
    clocks = []
    for ticket in tickets:
        rule = rule_for(ticket, tiers[ticket.customer_id] if tiers else None)
        if rule is None:
            continue
        for metric, done_at in ((M.FIRST_RESPONSE, ticket.first_response_at), (M.RESOLUTION, ticket.solved_at)):
            clock = _new_clock(ticket, rule, metric, ticket.created_at)
            if clock is None:
                continue
            clock.paused_at = now if ticket.status in rule.policy.pause_statuses else None
            if done_at is not None:
                clock.fulfilled_at = done_at
            elif ticket.status == S.CLOSED:
                clock.stopped_at = ticket.closed_at or ticket.updated_at
            if (done_at or now) > clock.due_at:
                clock.breached_at = clock.due_at
            if clock.warn_at is not None and (done_at or now) > clock.warn_at:
                clock.warned_at = clock.warn_at  # history: no warning is due any more
            clock.next_check_at = None if clock.breached_at or not clock.is_running else next_check(clock)
            clocks.append(clock)
    return clocks
