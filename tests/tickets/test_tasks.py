"""Celery tasks run by a real worker on the configured broker (Redis in CI)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.utils import timezone

from config.celery import app
from tickets import services, sla
from tickets.models import Escalation, SlaPolicy, Ticket
from tickets.tasks import close_solved_tickets_task, sweep_sla_clocks_task

from ..factories import CustomerFactory, TicketFactory

S = Ticket.Status


@pytest.fixture
def queue() -> str:
    """A queue of the test's own, so a dev worker running on this machine takes nothing."""
    return f"test-{uuid.uuid4().hex}"


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_closes_tickets_left_solved(queue):
    old = TicketFactory(status=S.SOLVED, solved_at=timezone.now() - timedelta(days=10))
    fresh = TicketFactory(status=S.SOLVED, solved_at=timezone.now())
    finished = []

    def count(sender=None, **kwargs):
        if getattr(sender, "name", None) == close_solved_tickets_task.name:
            finished.append(kwargs["retval"])

    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]):
            close_solved_tickets_task.apply_async(queue=queue)
            assert wait_for(lambda: len(finished) == 1)
            close_solved_tickets_task.apply_async(queue=queue)  # a repeat changes nothing
            assert wait_for(lambda: len(finished) == 2)
    finally:
        task_postrun.disconnect(count)
    assert finished == [1, 0]
    assert Ticket.objects.get(pk=old.pk).status == S.CLOSED
    assert Ticket.objects.get(pk=fresh.pk).status == S.SOLVED
    assert Ticket.objects.get(pk=old.pk).history.filter(history_change_reason="auto_close").count() == 1


def test_beat_schedules_the_sweep_with_an_expiry_under_its_period(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["close-solved-tickets"]
    assert entry["task"] == close_solved_tickets_task.name
    assert entry["options"]["expires"] < 600


@pytest.fixture
def routed_to(queue, monkeypatch):
    """Send every ticket task to the test's queue, the follow-up tasks they queue included."""
    monkeypatch.setitem(app.conf, "task_routes", {"tickets.*": {"queue": queue}})
    monkeypatch.setattr(app.amqp, "_rtable", None)  # re-read task_routes…
    monkeypatch.delitem(app.amqp.__dict__, "router", raising=False)  # …in a new router
    yield queue
    app.amqp.__dict__.pop("router", None)  # and forget it afterwards
    app.amqp._rtable = None


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_escalates_a_breached_first_response_at_its_deadline(routed_to, settings):
    settings.SLA_MIN_WARNING_LEAD_SECONDS = 0
    # 10 s: the warning at 80% leaves a 2 s window, wider than the sweep period, as a chat target's does.
    policy = SlaPolicy.objects.create(name="test: 10 s", position=0, channels=["other"], pause_statuses=["pending"])
    policy.targets.create(metric="first_response", seconds=10)
    sla.forget_policies()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[routed_to]):
        ticket = services.open_ticket(customer=CustomerFactory(), subject="s", channel="other", body="在吗")
        due = ticket.sla_clocks.get(metric="first_response").due_at

        last_sweep = [0.0]

        def beat_then_look() -> bool:  # this test is beat: the sweep every second, as shipped
            if time.monotonic() - last_sweep[0] >= 1.0:
                last_sweep[0] = time.monotonic()
                sweep_sla_clocks_task.delay()
            return Escalation.objects.filter(ticket=ticket, level=1).exists()

        assert wait_for(beat_then_look, timeout=30)
    escalation = Escalation.objects.get(ticket=ticket, level=1)
    assert timedelta(0) <= escalation.created_at - due < timedelta(seconds=5)  # at the deadline, not a sweep later
    assert Escalation.objects.filter(ticket=ticket, level=0).count() == 1  # the warning came first, once


def test_beat_sweeps_sla_clocks_more_often_than_a_chat_target(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-sla-clocks"]
    assert entry["task"] == sweep_sla_clocks_task.name
    assert entry["schedule"].total_seconds() <= 15
