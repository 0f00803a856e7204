"""Operations reports: the numbers of docs/metrics.md, for a date range and filters.

Every number is an aggregate over one indexed range of one table (tickets by created_at or
solved_at, clocks by breached_at or fulfilled_at, ratings by rated_at, reviews by submitted_at),
computed in SQL; only percentiles on SQLite, which has no percentile_cont, read the values
into Python. Exact by construction: nothing is pre-summed, so nothing can drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import Channel
from helpdesk.queries import agent_of
from helpdesk.roles import TEAM_LEAD, has_role, sees_everything

from .models import Category, Csat, Escalation, SlaClock, SlaMetric, Ticket
from .seconds import SecondsBetween

# Counted by a column every report index carries, not the id, so PostgreSQL can answer from the
# index alone (an index-only scan).
ROW = "created_at"
CLOCK_ROW = "metric"
MAX_DAYS = 400  # a range longer than this (plus its comparisons) is refused, not computed slowly
TOP = 10


@dataclass(frozen=True)
class Filters:
    team: int | None = None
    agent: int | None = None
    channel: str | None = None
    category: int | None = None


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def year_ago(self) -> Period:
        return Period(_year_before(self.start), _year_before(self.end))

    def as_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def period(start: date, end: date) -> Period:
    if end < start:
        raise DomainError("invalid", _("The range ends before it starts."), field="to")
    if (end - start).days + 1 > MAX_DAYS:
        raise DomainError("invalid", _("A report covers at most %d days.") % MAX_DAYS, field="to")
    return Period(start, end)


# --- who may see what -----------------------------------------------------------------


def allowed_filters(user: AbstractBaseUser | AnonymousUser, filters: Filters) -> Filters:
    """The filters the user may ask for: everything for roles that see across teams; a team
    lead their own teams (their team when they name none, if they lead one). DomainError
    `no_reports` (no right to reports) or `forbidden_team` otherwise: the API answers 403."""
    if sees_everything(user):
        return filters
    agent = agent_of(user) if user.is_authenticated and user.is_active else None
    if agent is None or not has_role(user, TEAM_LEAD):
        raise DomainError("no_reports", _("Reports are for team leads and administrators."))
    teams = list(agent.teams.values_list("pk", flat=True))
    if filters.team is None and len(teams) == 1:
        return Filters(teams[0], filters.agent, filters.channel, filters.category)
    if filters.team not in teams:
        raise DomainError("forbidden_team", _("Choose one of the teams you lead."), field="team")
    return filters


# --- the numbers --------------------------------------------------------------------------


def summary(*, start: date, end: date, filters: Filters = Filters()) -> dict[str, Any]:
    """The report for the range, with the previous period (环比) and a year before (同比)."""
    current = period(start, end)
    now = numbers(current, filters)
    previous = numbers(current.previous(), filters)
    year_ago = numbers(current.year_ago(), filters)
    now["rising_categories"] = _rising(now["_categories"], previous["_categories"])
    for row in [*now["top_categories"], *now["rising_categories"]]:  # the same category in the other periods
        row["previous"] = previous["_categories"].get(row["code"], 0)
        row["year_ago"] = year_ago["_categories"].get(row["code"], 0)
    for data in (now, previous, year_ago):
        data.pop("_categories")
    return {
        **now,
        "previous": previous,
        "year_ago": year_ago,
        "change": {"previous": _changes(now, previous), "year_ago": _changes(now, year_ago)},
    }


def numbers(span: Period, filters: Filters) -> dict[str, Any]:
    """Every number of docs/metrics.md for one period.

    One pass over each range: the tickets created (two: totals, then by hour, weekday and
    category), the tickets solved, the clocks decided, the escalations, ratings and reviews.
    """
    start, end = span.bounds
    tickets = _tickets(filters)
    created = tickets.filter(created_at__gte=start, created_at__lt=end)
    solved = tickets.filter(solved_at__gte=start, solved_at__lt=end)
    first_response = Duration("first_response", "first_response_seconds")
    resolution = Duration("resolution", "resolution_seconds")
    handle = Duration("handle", "handle_seconds")

    c = created.aggregate(
        total=Count(ROW),
        resolved=Count(ROW, filter=Q(solved_at__lt=end)),
        **{f"ch_{code}": Count(ROW, filter=Q(channel=code)) for code in Channel.values},
        **first_response.aggregates(),
    )
    s = solved.aggregate(
        total=Count(ROW),
        fcr=Count(ROW, filter=Q(public_replies=1, reopens=0)),
        reopened=Count(ROW, filter=Q(reopens__gte=1)),
        **resolution.aggregates(),
        **handle.aggregates(),
    )
    hourly, weekdays = _peaks(created)
    by_category = dict(created.exclude(category=None).order_by().values_list("category").annotate(n=Count(ROW)))
    codes = dict(Category.objects.filter(pk__in=by_category).values_list("pk", "code")) if by_category else {}
    categories = {codes[pk]: n for pk, n in by_category.items()}
    sla, next_response = _clocks_decided(filters, start, end)
    return {
        "period": span.as_json(),
        "tickets_created": c["total"],
        "tickets_solved": s["total"],
        "resolution_rate": _rate(c["resolved"], c["total"]),
        "fcr_rate": _rate(s["fcr"], s["total"]),
        "reopen_rate": _rate(s["reopened"], s["total"]),
        "first_response_seconds": first_response.result(c, created),
        "resolution_seconds": resolution.result(s, solved),
        "handle_seconds": handle.result(s, solved),
        "next_response_seconds": next_response,
        "sla": sla,
        "escalations": _escalations(filters, start, end),
        "csat": _csat(filters, start, end),
        "qa": _qa(filters, start, end),
        "channels": {code: c[f"ch_{code}"] for code in Channel.values},
        "hourly": hourly,
        "weekdays": weekdays,
        "top_categories": [
            {"code": code, "count": n} for code, n in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        ],
        "_categories": categories,
    }


def _peaks(created: QuerySet[Ticket]) -> tuple[list[int], list[int]]:
    """Tickets created by local hour of the day and by ISO weekday (Monday first)."""
    zone = timezone.get_current_timezone()
    hourly, weekdays = [0] * 24, [0] * 7
    quarters = created.annotate(quarter=_QuarterHour("created_at")).order_by().values_list("quarter")
    for quarter, n in quarters.annotate(n=Count(ROW)):
        local = datetime.fromtimestamp(quarter, zone)
        hourly[local.hour] += n
        weekdays[local.isoweekday() - 1] += n
    return hourly, weekdays


class _QuarterHour(Func):
    """The Unix time of the quarter hour a timestamp falls in.

    Every time zone's offset is a whole number of quarter hours, so the local hour and weekday
    follow exactly from it, and grouping by it is ten times cheaper than converting each row to
    local time in SQL.
    """

    template = "(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / 900 * 900)"
    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "CAST(EXTRACT(EPOCH FROM date_bin('15 minutes', %(expressions)s, TIMESTAMPTZ 'epoch')) AS bigint)"
        return self.as_sql(compiler, connection, template=template, **extra)


def _tickets(filters: Filters) -> QuerySet[Ticket]:
    return Ticket.objects.filter(**_ticket_filter(filters))


def _ticket_filter(filters: Filters, prefix: str = "") -> dict[str, Any]:
    wanted = {"team_id": filters.team, "assignee_id": filters.agent, "channel": filters.channel, "category_id": filters.category}
    return {f"{prefix}{name}": value for name, value in wanted.items() if value is not None}


def _clocks(filters: Filters) -> QuerySet[SlaClock]:
    return SlaClock.objects.filter(**_ticket_filter(filters, "ticket__"))


def _clocks_decided(filters: Filters, start: datetime, end: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """SLA outcomes by metric, and next-response times, in one pass over the clocks decided."""
    breached = Q(breached_at__gte=start, breached_at__lt=end)
    fulfilled = Q(fulfilled_at__gte=start, fulfilled_at__lt=end)
    clocks = _clocks(filters).filter(breached | fulfilled)
    rows = clocks.order_by().values("metric").annotate(
        breached=Count(CLOCK_ROW, filter=breached), met=Count(CLOCK_ROW, filter=fulfilled & Q(breached_at=None))
    )
    outcomes = {row["metric"]: row for row in rows}
    sla = {}
    for metric in SlaMetric.values:
        met, late = outcomes.get(metric, {}).get("met", 0), outcomes.get(metric, {}).get("breached", 0)
        sla[metric] = {"met": met, "breached": late, "attainment": _rate(met, met + late)}
    replies = Duration("next", SecondsBetween(F("fulfilled_at"), F("started_at")), fulfilled, row=CLOCK_ROW)
    answered = clocks.filter(metric=SlaMetric.NEXT_RESPONSE)
    return sla, replies.result(answered.aggregate(**replies.aggregates()), answered)


def _escalations(filters: Filters, start: datetime, end: datetime) -> dict[str, int]:
    rows = (
        Escalation.objects.filter(created_at__gte=start, created_at__lt=end, **_ticket_filter(filters, "ticket__"))
        .order_by()
        .values_list("kind", "level")
        .annotate(n=Count("pk"))
    )
    counts = {"0": 0, "1": 0, "2": 0, "3": 0, "manual": 0}
    for kind, level, n in rows:
        key = "manual" if kind == Escalation.Kind.MANUAL else str(level)
        counts[key] = counts.get(key, 0) + n
    return counts


def _csat(filters: Filters, start: datetime, end: datetime) -> dict[str, Any]:
    wanted = {"team_id": filters.team, "agent_id": filters.agent, "ticket__channel": filters.channel,
              "ticket__category_id": filters.category}
    ratings = Csat.objects.filter(rated_at__gte=start, rated_at__lt=end, **{k: v for k, v in wanted.items() if v is not None})
    r = ratings.aggregate(responses=Count("pk"), average=Avg("stars"), satisfied=Count("pk", filter=Q(stars__gte=4)))
    return {
        "responses": r["responses"],
        "average": _two(r["average"]),
        "satisfied_share": _rate(r["satisfied"], r["responses"]),
    }


def _qa(filters: Filters, start: datetime, end: datetime) -> dict[str, Any]:
    from qa.models import Review

    wanted = {"ticket__team_id": filters.team, "agent_id": filters.agent, "ticket__channel": filters.channel,
              "ticket__category_id": filters.category}
    reviews = Review.objects.filter(
        submitted_at__gte=start, submitted_at__lt=end, calibration=None, score__isnull=False,
        **{k: v for k, v in wanted.items() if v is not None},
    )
    r = reviews.aggregate(reviews=Count("pk"), average=Avg("score"))
    return {"reviews": r["reviews"], "average_score": _two(r["average"])}


def _rising(now: dict[str, int], before: dict[str, int]) -> list[dict[str, Any]]:
    grown = [
        {"code": code, "count": n, "previous": before.get(code, 0), "change": n - before.get(code, 0)}
        for code, n in now.items()
        if n > before.get(code, 0)
    ]
    return sorted(grown, key=lambda row: (-row["change"], row["code"]))[:TOP]


HEADLINES = ("tickets_created", "tickets_solved", "resolution_rate", "fcr_rate", "reopen_rate")


def _changes(now: dict[str, Any], before: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {name: _growth(now[name], before[name]) for name in HEADLINES}
    out["first_response_mean"] = _growth(now["first_response_seconds"]["mean"], before["first_response_seconds"]["mean"])
    out["csat_average"] = _growth(now["csat"]["average"], before["csat"]["average"])
    return out


def _growth(now: Any, before: Any) -> float | None:
    if now is None or not before:
        return None
    return round((float(now) - float(before)) / float(before), 4)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _two(value: Any) -> float | None:
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- durations ---------------------------------------------------------------------------


class _Percentile(Aggregate):
    """PostgreSQL's percentile_cont: linear interpolation, as docs/metrics.md defines."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=percentile, **extra)


@dataclass(frozen=True)
class Duration:
    """Mean, median and p90 of a duration in seconds over the rows that have one, in whole seconds.

    `value` is a column of seconds (the ticket's generated durations) or an expression giving
    them. On PostgreSQL the figures join the aggregate of their range's one pass; SQLite, which
    has no percentile_cont, reads the values and interpolates the same way.
    """

    name: str
    value: str | Any
    condition: Q | None = None  # for a column: the rows where it is not null
    row: str = ROW

    @property
    def _expression(self) -> Any:
        return F(self.value) if isinstance(self.value, str) else self.value

    @property
    def _condition(self) -> Q | None:
        if self.condition is None and isinstance(self.value, str):
            return Q(**{f"{self.value}__isnull": False})
        return self.condition

    def aggregates(self) -> dict[str, Any]:
        if connection.vendor != "postgresql":
            return {}
        value = self._expression
        only = {"filter": self._condition} if self._condition is not None else {}
        return {
            f"{self.name}_count": Count(self.row, **only),
            f"{self.name}_mean": Avg(value, **only),
            f"{self.name}_median": _Percentile(value, 0.5, **only),
            f"{self.name}_p90": _Percentile(value, 0.9, **only),
        }

    def result(self, aggregated: dict[str, Any], rows: QuerySet) -> dict[str, Any]:
        if connection.vendor == "postgresql":
            n = self.name
            return _rounded(aggregated[f"{n}_count"], aggregated[f"{n}_mean"], aggregated[f"{n}_median"], aggregated[f"{n}_p90"])
        if self._condition is not None:
            rows = rows.filter(self._condition)
        values = rows.order_by().annotate(seconds=self._expression).values_list("seconds", flat=True)
        return _from_values(sorted(values))


def _from_values(values: list[float]) -> dict[str, Any]:
    if not values:
        return _rounded(0, None, None, None)
    return _rounded(len(values), sum(values) / len(values), percentile(values, 0.5), percentile(values, 0.9))


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation at position p·(n−1), as percentile_cont."""
    position = p * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rounded(count: int, mean: float | None, median: float | None, p90: float | None) -> dict[str, Any]:
    def whole(value: float | None) -> int | None:
        return None if value is None else int(Decimal(str(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))

    return {"count": count, "mean": whole(mean), "median": whole(median), "p90": whole(p90)}

