"""The deadline runner: the sweep every second hands out what is due at once, in batches; a
check lost with its worker is handed out again when its short claim ends; a check running keeps
its clock (the row lock) however long it takes."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections, transaction

from tickets import services, sla
from tickets.models import Escalation, SlaClock
from tickets.tasks import sweep_sla_clocks_task

from ..factories import CustomerFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 24, 10, tzinfo=SHANGHAI)  # a Tuesday morning, inside business hours
pytestmark = pytest.mark.django_db


def chat():
    return services.open_ticket(customer=CustomerFactory(), subject="在吗", channel="web_chat", body="在吗")


def first_response(ticket) -> SlaClock:
    return ticket.sla_clocks.get(metric="first_response")


@pytest.fixture
def queued(monkeypatch):
    """The batches of checks handed to the broker, and any ETA task (there should be none)."""
    from tickets.tasks import check_sla_clock_task, check_sla_clocks_task

    sent = {"batches": [], "eta": []}
    monkeypatch.setattr(check_sla_clocks_task, "apply_async", lambda args, **kw: sent["batches"].append(args[0]))
    monkeypatch.setattr(check_sla_clock_task, "apply_async", lambda args, **kw: sent["eta"].append(args[0]))
    return sent


def test_the_runner_is_the_shipped_design(settings):
    assert (settings.SLA_SWEEP_SECONDS, settings.SLA_PRECISE_HORIZON_SECONDS, settings.SLA_CLAIM_LEASE_SECONDS) == (1, 0, 3)
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-sla-clocks"]
    assert entry["schedule"] == timedelta(seconds=1)


def test_a_chat_deadline_is_handed_out_by_the_first_sweep_after_it_and_the_request_queues_nothing(
    queued, django_capture_on_commit_callbacks
):
    with time_machine.travel(START, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = chat()  # 15 s
    clock = first_response(ticket)
    assert queued == {"batches": [], "eta": []}
    with time_machine.travel(START + timedelta(seconds=14.5), tick=False):
        assert sweep_sla_clocks_task() == 0  # not due yet: no looking ahead
    with time_machine.travel(START + timedelta(seconds=15.5), tick=False):
        assert sweep_sla_clocks_task() == 1
        assert sweep_sla_clocks_task() == 0  # claimed: a second beat's sweep hands out nothing
    assert queued == {"batches": [[clock.pk]], "eta": []}


def test_a_check_lost_with_its_worker_is_handed_out_again_seconds_later_not_a_minute(queued):
    with time_machine.travel(START, tick=False):
        ticket = chat()
    with time_machine.travel(START + timedelta(seconds=15.5), tick=False):
        assert sweep_sla_clocks_task() == 1  # and its worker dies: nothing happens to the clock
    with time_machine.travel(START + timedelta(seconds=15.5 + 2.5), tick=False):
        assert sweep_sla_clocks_task() == 0  # still claimed
    with time_machine.travel(START + timedelta(seconds=15.5 + 3), tick=False):
        assert sweep_sla_clocks_task() == 1  # the 3 s claim ran out: handed out again
    assert queued["batches"] == [[first_response(ticket).pk]] * 2
    with time_machine.travel(START + timedelta(seconds=19), tick=False):
        assert [e.level for e in sla.check_clock(clock_id=first_response(ticket).pk)] == [1]
        assert sla.check_clock(clock_id=first_response(ticket).pk) == []  # the copy still queued: nothing
    assert Escalation.objects.filter(ticket=ticket).count() == 1


def test_a_busy_minute_goes_out_in_batches_small_enough_to_share(queued):
    with time_machine.travel(START, tick=False):
        clocks = [first_response(chat()).pk for _ in range(2 * sla.CHECK_BATCH + 5)]
    with time_machine.travel(START + timedelta(seconds=16), tick=False):
        assert sweep_sla_clocks_task() == len(clocks)
    assert [len(batch) for batch in queued["batches"]] == [sla.CHECK_BATCH, sla.CHECK_BATCH, 5]
    assert sorted(pk for batch in queued["batches"] for pk in batch) == sorted(clocks)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_check_still_running_past_its_claim_is_not_handed_out_again():
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections need PostgreSQL")
    with time_machine.travel(START, tick=False):
        ticket = chat()
    clock = first_response(ticket)
    at = START + timedelta(seconds=16)
    assert len(sla.claim_due_clocks(now=at)) == 1
    locked, done = threading.Event(), threading.Event()

    def slow_check() -> None:  # a check holding the clock, as check_clock does while it works
        try:
            with transaction.atomic():
                SlaClock.objects.select_for_update().get(pk=clock.pk)
                locked.set()
                done.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=slow_check)
    worker.start()
    try:
        assert locked.wait(10)
        assert sla.claim_due_clocks(now=at + sla.claim_lease() * 5) == []  # long past the claim: skipped
    finally:
        done.set()
        worker.join()
    assert len(sla.claim_due_clocks(now=at + sla.claim_lease() * 5)) == 1  # its worker died: handed out
