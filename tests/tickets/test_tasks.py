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
from tickets.models import Ticket
from tickets.tasks import close_solved_tickets_task

from ..factories import TicketFactory

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
