"""Beat's scheduler sends each entry once per period however many beats run, and one beat is
never held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab, schedule
from hypothesis import given
from hypothesis import strategies as st

from config.celery import app
from helpdesk import beat
from helpdesk.beat import OncePerPeriodScheduler, claim_period, period_seconds, period_start
from helpdesk.models import Heartbeat

AT = datetime(2026, 11, 24, 2, 0, 0, 400000, tzinfo=UTC)
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(at=instants, period=st.sampled_from([1, 2, 10, 30, 60, 300]), gap=st.floats(min_value=0, max_value=3600))
def test_one_beats_sends_a_period_or_more_apart_fall_in_different_periods(at, period, gap):
    later = at + timedelta(seconds=period + gap)
    assert period_start(later, period) > period_start(at, period)
    assert period_start(at, period) <= at < period_start(at, period) + timedelta(seconds=period)


def test_the_period_is_the_interval_or_the_minute_for_cron():
    assert period_seconds(schedule(timedelta(seconds=1))) == 1
    assert period_seconds(crontab("*/10")) == 60
    assert period_seconds(object()) == 0


@pytest.mark.django_db
def test_the_first_beat_of_a_period_sends_and_the_second_does_not():
    assert claim_period(name="sweep-sla-clocks", seconds=1, at=AT)
    assert not claim_period(name="sweep-sla-clocks", seconds=1, at=AT + timedelta(milliseconds=500))
    assert claim_period(name="sweep-sla-clocks", seconds=1, at=AT + timedelta(seconds=1))
    assert claim_period(name="beat-heartbeat", seconds=60, at=AT)  # entries are counted apart
    assert not claim_period(name="sweep-sla-clocks", seconds=1, at=AT)  # a late beat's old period
    assert Heartbeat.objects.filter(name__startswith=beat.PREFIX).count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # beat works in autocommit, and replaces broken connections
def test_two_schedulers_send_an_entry_once_per_period(tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, *args, **kwargs: sent.append(name))
    monkeypatch.setattr(app, "now", lambda: AT)
    schedulers = [
        OncePerPeriodScheduler(app, schedule_filename=str(tmp_path / f"beat{n}"), lazy=True) for n in (1, 2)
    ]
    for scheduler in schedulers:
        scheduler.setup_schedule = lambda: None
        entry = scheduler.Entry(name="every-second", task="no.such.task", schedule=schedule(timedelta(seconds=1)), app=app)
        scheduler.apply_async(entry, advance=False)
    assert sent == ["no.such.task"]
