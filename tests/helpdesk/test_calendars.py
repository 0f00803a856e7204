"""Business-time arithmetic: examples a support team knows by heart, and properties that must
hold for any instant and any duration, in Shanghai and in a time zone with daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.calendars import (
    NoWorkingTime,
    Schedule,
    add_business_seconds,
    always,
    business_seconds_between,
    format_spans,
    parse_spans,
)
from helpdesk.holidays import statutory_dates

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600
NINE_TO_SIX = ((time(9), time(18)),)


def workweek(zone=SHANGHAI, spans=NINE_TO_SIX, dates=None) -> Schedule:
    return Schedule(zone=zone, weekly={day: spans for day in range(5)}, dates=dates or {})


def china() -> Schedule:
    """cn-workweek as shipped: Monday to Friday 09:00-18:00 with China's 2026 holidays."""
    dates = {day: NINE_TO_SIX if working else () for day, (working, _) in statutory_dates("CN").items()}
    return workweek(dates=dates)


def at(*args, zone=SHANGHAI) -> datetime:
    return datetime(*args, tzinfo=zone)


def test_a_question_at_night_is_due_the_next_morning():
    # Tuesday 22:00 + 2 business hours = Wednesday 11:00
    assert add_business_seconds(workweek(), at(2026, 11, 24, 22), 2 * HOUR) == at(2026, 11, 25, 11)


def test_a_question_on_friday_evening_waits_for_monday():
    assert add_business_seconds(workweek(), at(2026, 11, 27, 17), 2 * HOUR) == at(2026, 11, 30, 10)


def test_a_full_business_day_ends_at_the_same_time_the_next_working_day():
    assert add_business_seconds(workweek(), at(2026, 11, 24, 14), 9 * HOUR) == at(2026, 11, 25, 14)


def test_national_day_week_is_closed_and_the_make_up_saturday_works():
    # 2026: 1-7 October are holidays; Saturday 10 October is a make-up workday.
    schedule = china()
    assert add_business_seconds(schedule, at(2026, 9, 30, 17), 2 * HOUR) == at(2026, 10, 8, 10)
    assert add_business_seconds(schedule, at(2026, 10, 9, 17), 4 * HOUR) == at(2026, 10, 10, 12)
    assert business_seconds_between(schedule, at(2026, 10, 1), at(2026, 10, 8)) == 0


def test_a_lunch_break_does_not_count():
    schedule = workweek(spans=parse_spans("09:00-12:00, 13:30-18:00"))
    assert add_business_seconds(schedule, at(2026, 11, 24, 11), 2 * HOUR) == at(2026, 11, 24, 14, 30)
    assert business_seconds_between(schedule, at(2026, 11, 24, 11), at(2026, 11, 24, 14, 30)) == 2 * HOUR


def test_a_date_with_other_hours_overrides_the_week():
    schedule = workweek(dates={date(2026, 11, 24): ((time(10), time(12)),)})
    assert add_business_seconds(schedule, at(2026, 11, 24, 9), 3 * HOUR) == at(2026, 11, 25, 10)


def test_a_working_day_is_eight_hours_across_the_spring_daylight_saving_change():
    # Berlin moves its clocks forward on Sunday 29 March 2026.
    schedule = workweek(zone=BERLIN, spans=((time(9), time(17)),))
    start = at(2026, 3, 27, 17, zone=BERLIN)  # Friday close, UTC+1
    due = add_business_seconds(schedule, start, 8 * HOUR)
    assert due == at(2026, 3, 30, 17, zone=BERLIN)  # Monday close, UTC+2
    assert due - start == timedelta(days=3, hours=-1)


def test_a_whole_day_on_the_autumn_change_has_twenty_five_hours():
    schedule = Schedule(zone=BERLIN, weekly={6: ((time(0), time(0)),)})  # Sundays only
    assert business_seconds_between(schedule, at(2026, 10, 24, zone=BERLIN), at(2026, 10, 27, zone=BERLIN)) == 25 * HOUR


def test_24x7_counts_every_second():
    start = at(2026, 10, 1, 3, 17)
    assert add_business_seconds(always("Asia/Shanghai"), start, 15) == start + timedelta(seconds=15)


def test_a_calendar_without_working_time_is_an_error_not_a_hang():
    with pytest.raises(NoWorkingTime):
        add_business_seconds(Schedule(zone=SHANGHAI, weekly={}), at(2026, 1, 1), 60)


@pytest.mark.parametrize(
    "text", ["9-18", "09:00-08:00", "25:00-26:00", "09:00-12:00, 11:00-13:00", "09:00-24:30"]
)
def test_badly_written_hours_are_refused(text):
    with pytest.raises(ValueError, match=r"."):
        parse_spans(text)


def test_hours_read_back_as_written():
    assert format_spans(parse_spans("13:00-24:00, 09:00-12:00")) == "09:00-12:00, 13:00-24:00"


# --- properties ------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=60 * 9 * HOUR)
schedules = st.sampled_from(
    [
        workweek(),
        china(),
        workweek(zone=BERLIN, spans=parse_spans("08:00-12:00, 13:00-17:00")),
        Schedule(zone=ZoneInfo("America/New_York"), weekly={day: ((time(0), time(0)),) for day in (0, 2, 4, 6)}),
        always("Europe/Berlin"),
    ]
)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, start=instants, seconds=durations)
def test_the_time_counted_back_is_the_time_added(schedule, start, seconds):
    due = add_business_seconds(schedule, start, seconds)
    assert due >= start
    assert business_seconds_between(schedule, start, due) == seconds


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, start=instants, a=durations, b=durations)
def test_more_time_is_never_due_earlier(schedule, start, a, b):
    low, high = sorted((a, b))
    assert add_business_seconds(schedule, start, low) <= add_business_seconds(schedule, start, high)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, times=st.lists(instants, min_size=3, max_size=3))
def test_business_time_adds_up_over_consecutive_intervals(schedule, times):
    a, b, c = sorted(times)
    whole, first, second = (business_seconds_between(schedule, x, y) for x, y in ((a, c), (a, b), (b, c)))
    assert whole == pytest.approx(first + second, abs=1e-6)  # floats of microseconds
    assert business_seconds_between(schedule, a, c) <= (c - a).total_seconds()


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, start=instants, seconds=st.integers(min_value=1, max_value=60 * 9 * HOUR))
def test_a_deadline_falls_inside_working_hours(schedule, start, seconds):
    due = add_business_seconds(schedule, start, seconds)
    # the last second before the deadline was a working one
    assert business_seconds_between(schedule, due - timedelta(seconds=1), due) == 1
