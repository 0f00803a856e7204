"""Automatic replies: a first acknowledgement, and notices outside hours and on holidays.

The ticket services call `on_customer_message` inside their transaction, with the ticket
locked, after the customer's message is stored. A reply is a public SYSTEM message in the
conversation, written here directly: `services.post_message` would call us again and count it
as the agent's first response, which it is not. Each reply is recorded as an AutoReply row
unique per (ticket, trigger, key); the constraint, not a read, is what keeps a notice from
going out twice when two messages race.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from helpdesk import webhooks
from helpdesk.calendars import SEARCH_DAYS, Schedule
from helpdesk.models import BusinessCalendar, Channel
from helpdesk.process_cache import process_cached
from helpdesk.queries import schedule_for

from .models import AutoReply, AutoReplyRule, Message, SlaClock, SlaMetric, Ticket
from .payloads import message_data

logger = logging.getLogger(__name__)
T = AutoReplyRule.Trigger
PLACEHOLDERS = ("customer_name", "ticket_ref", "expected_reply_time")
# A phone call is answered by a person, or it is not; a text read back into it helps nobody.
SKIPPED_CHANNELS = frozenset({Channel.PHONE.value})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_BRACED = re.compile(r"\{([^{}]*)\}")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- rules --------------------------------------------------------------------------------------

@process_cached(seconds=30)
def active_rules() -> tuple[AutoReplyRule, ...]:
    """Active rules with their calendars, kept per process: every customer message consults
    them, and they change a few times a year."""
    return tuple(AutoReplyRule.objects.filter(is_active=True).select_related("calendar").order_by("pk"))


def forget_rules() -> None:
    """Read the rules again on next use (this process; others within 30 s)."""
    active_rules.forget()


def pick_rule(rules: tuple[AutoReplyRule, ...] | list[AutoReplyRule], *, trigger: str, channel: str, language: str) -> AutoReplyRule | None:
    """The rule for a trigger on a channel in the customer's language, else in LANGUAGE_CODE's.

    A rule that names the channel beats one for every channel; then the oldest wins.
    """
    matching = [r for r in rules if r.trigger == trigger and (not r.channels or channel in r.channels)]
    for wanted in dict.fromkeys((language.lower(), settings.LANGUAGE_CODE.lower())):
        chosen = [r for r in matching if r.language.lower() == wanted]
        if chosen:
            return min(chosen, key=lambda r: (not r.channels, r.pk))
    return None


# --- the calendar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closure:
    """The closed period an instant falls in: when it began, when work resumes, and whether the
    instant's day is a closed calendar date (a statutory or hand-entered holiday)."""

    started_at: datetime
    opens_at: datetime | None  # None: no working time within SEARCH_DAYS
    holiday: bool

    def key(self, schedule: Schedule) -> str:
        """The calendar-local date the closed period began: one notice per night, weekend or holiday."""
        return self.started_at.astimezone(schedule.zone).date().isoformat()


def closure_at(schedule: Schedule, at: datetime) -> Closure | None:
    """None while `at` is within working hours; else the closed period around it."""
    day = at.astimezone(schedule.zone).date()
    # A span may run past midnight, so the day before can still be working at `at`.
    for begin, finish in (*schedule.intervals_on(day - timedelta(days=1)), *schedule.intervals_on(day)):
        if begin <= at < finish:
            return None
    return Closure(
        started_at=_last_close_before(schedule, at, day),
        opens_at=_next_opening_after(schedule, at, day),
        holiday=schedule.dates.get(day) == (),
    )


def _last_close_before(schedule: Schedule, at: datetime, day: date) -> datetime:
    for back in range(SEARCH_DAYS + 1):
        ends = [finish for _, finish in schedule.intervals_on(day - timedelta(days=back)) if finish <= at]
        if ends:
            return max(ends)
    return at  # never worked before: the period starts now


def _next_opening_after(schedule: Schedule, at: datetime, day: date) -> datetime | None:
    for ahead in range(-1, SEARCH_DAYS + 1):
        starts = [begin for begin, _ in schedule.intervals_on(day + timedelta(days=ahead)) if begin > at]
        if starts:
            return min(starts)
    return None


# --- the text -------------------------------------------------------------------------------------


def unknown_placeholders(body: str) -> list[str]:
    """Braced names in `body` that are not placeholders, as written ("{order_id}"), in order."""
    return list(dict.fromkeys(f"{{{name}}}" for name in _BRACED.findall(body) if name not in PLACEHOLDERS))


def render_body(body: str, values: dict[str, str]) -> str:
    """Fill the placeholders; anything else in braces is left as written, so a rule with a
    mistake still reaches the customer rather than failing their request."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def format_reply_time(at: datetime, *, zone: tzinfo, language: str, now: datetime) -> str:
    """The time in the calendar's zone: "09:00" today, else "11月24日 09:00" / "24 Nov 09:00"."""
    local = at.astimezone(zone)
    clock = local.strftime("%H:%M")
    if local.date() == now.astimezone(zone).date():
        return clock
    if language.lower().startswith("zh"):
        return f"{local.month}月{local.day}日 {clock}"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {clock}"


def _response_due(ticket: Ticket, *, first: bool) -> datetime | None:
    """The due time of the running first-response clock (next response once answered)."""
    opened = getattr(ticket, "opened_clocks", None) if first else None
    if opened is not None:  # open_ticket just made them: no query
        dues = [c.due_at for c in opened if c.metric == SlaMetric.FIRST_RESPONSE and c.is_running and c.paused_at is None]
        return min(dues, default=None)
    return (
        SlaClock.objects.filter(
            ticket=ticket, metric__in=(SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE),
            fulfilled_at=None, stopped_at=None, paused_at=None,
        )
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )


# --- the event ------------------------------------------------------------------------------------


def on_customer_message(*, ticket: Ticket, message: Message, first: bool) -> Message | None:
    """Called by the ticket services, inside their transaction, after a customer's message is stored.

    `first` is true for the message that opened the ticket. Sends at most one reply: a holiday
    notice before an outside-hours one, and either instead of the acknowledgement (both say when
    to expect an answer). Returns the reply, or None. Safe under concurrent messages: the
    AutoReply constraint lets one of them send.
    """
    if ticket.channel in SKIPPED_CHANNELS:
        return None
    now = timezone.now()
    at = message.created_at or now
    candidates = [
        r for r in active_rules()
        if (first or r.trigger != T.ACKNOWLEDGEMENT) and (not r.channels or ticket.channel in r.channels)
    ]
    closures: dict[int, Closure | None] = {}

    def closure(calendar: BusinessCalendar) -> Closure | None:
        if calendar.pk not in closures:
            closures[calendar.pk] = closure_at(schedule_for(calendar), at)
        return closures[calendar.pk]

    def applies(rule: AutoReplyRule | None) -> bool:
        if rule is None:
            return False
        if rule.trigger == T.ACKNOWLEDGEMENT:
            return True
        state = closure(rule.calendar)
        return state is not None and (state.holiday or rule.trigger == T.OUTSIDE_HOURS)

    # Most messages arrive in working hours on tickets already acknowledged: decide that
    # before reading the customer.
    if not any(applies(r) for r in candidates):
        return None
    customer = ticket.customer
    chosen = [
        pick_rule(candidates, trigger=trigger, channel=ticket.channel, language=customer.language)
        for trigger in (T.HOLIDAY, T.OUTSIDE_HOURS, T.ACKNOWLEDGEMENT)
    ]
    rule = next((r for r in chosen if applies(r)), None)
    if rule is None:
        return None
    schedule = schedule_for(rule.calendar)
    state = closure(rule.calendar)
    key = "" if rule.trigger == T.ACKNOWLEDGEMENT or state is None else state.key(schedule)
    if _already_sent(ticket, rule.trigger, key):
        return None  # the common case at night: the customer wrote again

    # The SLA's due time is the promise, but never before the calendar opens: a 15-second chat
    # target at 23:00 means "when we open".
    opening = at if state is None or state.opens_at is None else state.opens_at
    due = _response_due(ticket, first=first)
    expected = opening if due is None else max(due, opening)
    body = render_body(
        rule.body,
        {
            "customer_name": customer.name,
            "ticket_ref": ticket.reference,
            "expected_reply_time": format_reply_time(expected, zone=schedule.zone, language=rule.language, now=now),
        },
    )
    return _send(ticket=ticket, rule=rule, key=key, body=body, after=message.sent_at, now=now)


def _already_sent(ticket: Ticket, trigger: str, key: str) -> bool:
    """A read to spare the common repeat its savepoint and inserts; the constraint decides races."""
    return AutoReply.objects.filter(ticket=ticket, trigger=trigger, key=key).exists()


def _send(*, ticket: Ticket, rule: AutoReplyRule, key: str, body: str, after: datetime, now: datetime) -> Message | None:
    try:
        # A savepoint: losing the race must not abort the customer's transaction.
        with transaction.atomic():
            reply = Message.objects.create(
                ticket=ticket, author_kind=Message.AuthorKind.SYSTEM, is_internal=False, body=body,
                sent_at=max(now, after),  # after the customer's message in the thread, whatever their clock said
                created_at=now,
            )
            AutoReply.objects.create(ticket=ticket, rule=rule, trigger=rule.trigger, key=key, message=reply, sent_at=now)
    except IntegrityError:
        # Another message of this ticket sent the same notice first; our reply went with the savepoint.
        logger.info("Auto-reply %s/%s for %s sent already.", rule.trigger, key, ticket.reference)
        return None
    webhooks.emit("message.created", message_data(reply))  # the chat platform relays it
    return reply
