"""Read-side helpers for the organisation."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .calendars import Schedule, Span, merge_spans, parse_spans
from .models import Agent, BusinessCalendar, CalendarDate
from .roles import sees_everything


def agent_of(user: AbstractBaseUser | AnonymousUser) -> Agent | None:
    """The user's agent profile, if the user answers conversations."""
    if not user.is_authenticated:
        return None
    try:
        return user.agent
    except Agent.DoesNotExist:
        return None


def agents_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Agent]:
    """The agents `user` may see: everyone for roles that work across teams, else their teams'."""
    if sees_everything(user):
        return Agent.objects.all()
    agent = agent_of(user)
    if agent is None:
        return Agent.objects.none()
    return Agent.objects.filter(teams__in=agent.teams.values("pk")).distinct()


_schedules: dict[int, tuple[object, Schedule]] = {}


def schedule_for(calendar: BusinessCalendar) -> Schedule:
    """The calendar as plain data for helpdesk.calendars, kept per process until it changes."""
    cached = _schedules.get(calendar.pk)
    if cached is not None and cached[0] == calendar.updated_at:
        return cached[1]
    schedule = read_schedule(calendar)
    _schedules[calendar.pk] = (calendar.updated_at, schedule)
    return schedule


def read_schedule(calendar: BusinessCalendar) -> Schedule:
    """The calendar's rows as they are in the database now, past any cache (3 queries)."""
    weekly: dict[int, list[Span]] = {}
    for weekday, start, end in calendar.hours.order_by("weekday", "start").values_list("weekday", "start", "end"):
        weekly.setdefault(weekday, []).append((start, end))
    workday = parse_spans(calendar.workday_hours)
    dates = {
        day: () if kind == CalendarDate.Kind.CLOSED else (parse_spans(hours) if hours else workday)
        for day, kind, hours in calendar.dates.values_list("date", "kind", "hours")
    }
    return Schedule(
        zone=ZoneInfo(calendar.time_zone), weekly={day: merge_spans(spans) for day, spans in weekly.items()}, dates=dates
    )


def missing_holiday_years(calendar: BusinessCalendar, today: date) -> list[int]:
    """This year and next, where a calendar that keeps holidays has none entered."""
    keeps_holidays = calendar.holiday_region or calendar.dates.filter(kind=CalendarDate.Kind.CLOSED).exists()
    if not keeps_holidays:
        return []
    years = [today.year, today.year + 1]
    covered = set(
        calendar.dates.filter(kind=CalendarDate.Kind.CLOSED, date__year__in=years).values_list("date__year", flat=True)
    )
    return [year for year in years if year not in covered]
