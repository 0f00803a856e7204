"""Business-time arithmetic, pure: no database, no settings, no clock.

A `Schedule` is a calendar read into plain data: working spans per weekday in the calendar's
own time zone, and dated overrides (a holiday, a make-up workday, other hours that day).
Spans are local wall-clock times; each is turned into an aware interval on its date, so a
working day across a daylight-saving change is as long as the clocks on the wall say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Span = tuple[time, time]  # start, end; an end of 00:00 is the end of the day

# A calendar with no working time in this many days is treated as having none at all.
SEARCH_DAYS = 3 * 366
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class NoWorkingTime(ValueError):
    """The calendar has no working time within SEARCH_DAYS of the instant asked about."""


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    weekly: Mapping[int, tuple[Span, ...]]  # 0 = Monday
    dates: Mapping[date, tuple[Span, ...]] = field(default_factory=dict)  # () = closed that day

    def spans_on(self, day: date) -> tuple[Span, ...]:
        spans = self.dates.get(day)
        return self.weekly.get(day.weekday(), ()) if spans is None else spans

    def intervals_on(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The day's working intervals as aware UTC datetimes, in order."""
        for start, end in self.spans_on(day):
            begin = datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC)
            finish_day = day + timedelta(days=1) if end == time(0) else day
            finish = datetime.combine(finish_day, end, tzinfo=self.zone).astimezone(UTC)
            if finish > begin:
                yield begin, finish


def always(zone: str = "UTC") -> Schedule:
    """Every second counts: the 24x7 calendar."""
    whole_day = ((time(0), time(0)),)
    return Schedule(zone=ZoneInfo(zone), weekly={day: whole_day for day in range(7)})


def parse_spans(text: str) -> tuple[Span, ...]:
    """"09:00-12:00, 13:00-18:00" → spans, sorted; "24:00" or "00:00" as an end is midnight.

    Raises ValueError naming the bad part: spans must be well formed, non-empty and not overlap.
    """
    spans: list[Span] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _SPAN.match(part)
        if not match:
            raise ValueError(f"“{part}” is not a span like 09:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"“{part}” is not a time of day")
        start, end = time(h1, m1), time(0 if h2 == 24 else h2, m2)
        if end != time(0) and end <= start:
            raise ValueError(f"“{part}” ends before it starts")
        spans.append((start, end))
    spans.sort()
    for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        if end == time(0) or end > next_start:
            raise ValueError("spans overlap")
    return tuple(spans)


def merge_spans(spans: list[Span]) -> tuple[Span, ...]:
    """Sorted spans with overlapping or touching ones joined: hours entered twice count once."""
    merged: list[list[time]] = []
    for start, end in sorted(spans):
        if merged and (merged[-1][1] == time(0) or start <= merged[-1][1]):
            last_end = merged[-1][1]
            if last_end != time(0) and (end == time(0) or end > last_end):
                merged[-1][1] = end
            continue
        merged.append([start, end])
    return tuple((start, end) for start, end in merged)


def format_spans(spans: tuple[Span, ...]) -> str:
    def hhmm(t: time, is_end: bool) -> str:
        return "24:00" if is_end and t == time(0) else t.strftime("%H:%M")

    return ", ".join(f"{hhmm(s, False)}-{hhmm(e, True)}" for s, e in spans)


def _intervals_from(schedule: Schedule, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals that end after `instant`, clipped to start no earlier than it."""
    day = instant.astimezone(schedule.zone).date() - timedelta(days=1)  # a span may run past midnight
    empty_days = 0
    while empty_days <= SEARCH_DAYS:
        found = False
        for begin, finish in schedule.intervals_on(day):
            found = True
            if finish > instant:
                yield max(begin, instant), finish
        empty_days = 0 if found else empty_days + 1
        day += timedelta(days=1)
    raise NoWorkingTime(f"no working time within {SEARCH_DAYS} days after {instant.isoformat()}")


def add_business_seconds(schedule: Schedule, start: datetime, seconds: float) -> datetime:
    """The instant when `seconds` of working time have passed since `start`.

    Zero seconds from outside working hours is `start` itself: nothing is owed yet.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if seconds == 0:
        return start
    remaining = timedelta(seconds=seconds)
    for begin, finish in _intervals_from(schedule, start):
        if finish - begin >= remaining:
            return begin + remaining
        remaining -= finish - begin
    raise AssertionError("unreachable")  # _intervals_from raises when it runs out


def business_seconds_between(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Working seconds in [start, end); negative when end is before start."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end < start:
        return -business_seconds_between(schedule, end, start)
    total = timedelta()
    day = start.astimezone(schedule.zone).date() - timedelta(days=1)
    last = end.astimezone(schedule.zone).date()
    while day <= last:
        for begin, finish in schedule.intervals_on(day):
            overlap = min(finish, end) - max(begin, start)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds()


def schedule_to_data(schedule: Schedule) -> dict:
    """The schedule as JSON primitives, for a task that must know a calendar as it was."""

    def spans(items: tuple[Span, ...]) -> list[list[str]]:
        return [[start.isoformat(), end.isoformat()] for start, end in items]

    return {
        "zone": schedule.zone.key,
        "weekly": {str(day): spans(items) for day, items in schedule.weekly.items()},
        "dates": {day.isoformat(): spans(items) for day, items in schedule.dates.items()},
    }


def schedule_from_data(data: Mapping) -> Schedule:
    """The inverse of schedule_to_data."""

    def spans(items: list[list[str]]) -> tuple[Span, ...]:
        return tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in items)

    return Schedule(
        zone=ZoneInfo(data["zone"]),
        weekly={int(day): spans(items) for day, items in data["weekly"].items()},
        dates={date.fromisoformat(day): spans(items) for day, items in data["dates"].items()},
    )
