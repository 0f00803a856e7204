"""Operations that change the organisation: agents' presence and the like."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import (
    Agent,
    BusinessCalendar,
    CalendarDate,
    Customer,
    IdempotentRequest,
)

from .calendars import Schedule
from .holidays import statutory_dates
from .queries import read_schedule

# Who must hear that a calendar's working time changed: listener(calendar id, schedule before,
# when it changed), called after commit. tickets fills it in AppConfig.ready() (its SLA clocks);
# the core imports no app above it.
CALENDAR_CHANGED: list[Callable[[int, Schedule, datetime], None]] = []


@transaction.atomic
def set_presence(*, agent: Agent, presence: str) -> Agent:
    """Set an agent's presence; setting the one it already has changes nothing."""
    if presence not in Agent.Presence.values:
        raise DomainError("invalid_presence", _("Unknown presence “%s”.") % presence, field="presence")
    Agent.objects.filter(pk=agent.pk).exclude(presence=presence).update(
        presence=presence, presence_changed_at=timezone.now()
    )
    agent.refresh_from_db(fields=["presence", "presence_changed_at"])
    return agent


@dataclass(frozen=True)
class CustomerMatch:
    customer: Customer
    # False: an existing customer the caller may not see, found by a phone, email or external id
    # the caller typed. The ticket is linked to them, but nothing of their record is shown.
    disclosed: bool = True


def find_or_create_customer(**details: Any) -> Customer:
    """The customer named by id, external id, phone or email (in that order), made if new."""
    return match_customer(**details).customer


def match_customer(
    *,
    id: int | None = None,
    external_id: str = "",
    name: str = "",
    phone: str = "",
    email: str = "",
    tier: str | None = None,
    visible: QuerySet[Customer] | None = None,
) -> CustomerMatch:
    """The customer named by id, external id, phone or email (in that order), made if new.

    A customer found this way gets blank contact fields filled in and a tier the caller knows
    better; nothing the customer already has is overwritten otherwise. `visible` (None: all) is
    what the caller may see: an id outside it is unknown, and a customer outside it found by a
    contact detail is returned undisclosed and unchanged (the caller may not edit them either).
    """
    if tier is not None and tier not in Customer.Tier.values:
        raise DomainError("invalid_tier", _("Unknown tier “%s”.") % tier, field="tier")
    if id is not None:
        customer = Customer.objects.filter(pk=id).first()
        if customer is None or (visible is not None and not visible.filter(pk=id).exists()):
            raise DomainError("not_found", _("No customer has id %s.") % id, field="id")
    else:
        customer = _match_customer(external_id=external_id, phone=phone, email=email)
    if customer is None:
        if not (name or phone or email or external_id):
            raise DomainError("required", _("Give the customer's id, external id, name, phone or email."), field="name")
        fields = {
            "external_id": external_id, "name": name or phone or email or external_id, "phone": phone,
            "email": email, "tier": tier or Customer.Tier.STANDARD,
        }
        if not external_id:
            return CustomerMatch(Customer.objects.create(**fields))
        try:
            with transaction.atomic():
                return CustomerMatch(Customer.objects.create(**fields))
        except IntegrityError:
            # Another request created the same external id a moment ago: use theirs.
            customer = Customer.objects.get(external_id=external_id)
    if id is None and visible is not None and not visible.filter(pk=customer.pk).exists():
        return CustomerMatch(customer, disclosed=False)
    changes = {
        field: value
        for field, value in {"external_id": external_id, "name": name, "phone": phone, "email": email}.items()
        if value and not getattr(customer, field)
    }
    if tier and tier != customer.tier:
        changes["tier"] = tier
    if changes:
        for field, value in changes.items():
            setattr(customer, field, value)
        try:
            with transaction.atomic():
                customer.save(update_fields=list(changes))
        except IntegrityError:
            # The customer named by id, phone or email cannot take an external id another has.
            raise DomainError(
                "duplicate", _("Another customer has this external id."), field="external_id"
            ) from None
    return CustomerMatch(customer)


def _match_customer(*, external_id: str, phone: str, email: str) -> Customer | None:
    for field, value in (("external_id", external_id), ("phone", phone), ("email", email)):
        if value:
            customer = Customer.objects.filter(**{field: value}).order_by("pk").first()
            if customer is not None:
                return customer
    return None


def purge_idempotency_keys() -> int:
    """Forget Idempotency-Key results past their 24 hours; returns how many."""
    cutoff = timezone.now() - IdempotentRequest.RETENTION
    deleted, _counts = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@transaction.atomic
def record_calendar_change(*, calendar: BusinessCalendar, before: Schedule) -> bool:
    """The calendar's rows were written (hours, dates, zone): if its working time differs from
    `before`, bump `updated_at` (every process reads it again) and, after commit, hand the
    change to CALENDAR_CHANGED (the SLA clocks' deadlines are recomputed in batches by a task).
    Returns whether anything was queued; an edit that changes no working time queues nothing.
    """
    after = read_schedule(calendar)
    if after == before:
        return False
    calendar.save(update_fields=["updated_at"])
    calendar_id = calendar.pk

    def announce() -> None:
        changed_at = timezone.now()  # after commit: a deadline computed from now on reads the new hours
        for listener in CALENDAR_CHANGED:
            listener(calendar_id, before, changed_at)

    transaction.on_commit(announce, robust=True)
    return True


@transaction.atomic
def sync_statutory_dates(*, calendar: BusinessCalendar) -> int:
    """Fill in the calendar's public holidays and make-up workdays; returns how many dates changed.

    Dates entered by hand win: a statutory date never replaces one. Deadlines of running SLA
    clocks on the calendar are recomputed after commit (record_calendar_change).
    """
    before = read_schedule(calendar)
    wanted = statutory_dates(calendar.holiday_region)
    manual = set(calendar.dates.filter(source=CalendarDate.Source.MANUAL).values_list("date", flat=True))
    existing = {row.date: row for row in calendar.dates.filter(source=CalendarDate.Source.STATUTORY)}
    changed = []
    for day, (is_working, name) in wanted.items():
        if day in manual:
            continue
        kind = CalendarDate.Kind.WORKING if is_working else CalendarDate.Kind.CLOSED
        row = existing.pop(day, None)
        if row is None or (row.kind, row.name, row.hours) != (kind, name, ""):
            changed.append(CalendarDate(calendar=calendar, date=day, kind=kind, name=name, source=CalendarDate.Source.STATUTORY))
    CalendarDate.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()  # no longer statutory
    CalendarDate.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["calendar", "date"], update_fields=["kind", "name", "hours", "source"]
    )
    if changed or existing:
        record_calendar_change(calendar=calendar, before=before)
    return len(changed) + len(existing)
