"""A worker killed with SIGKILL in the middle of an escalation, with a second worker running:
the escalation is redone within REDO_BOUND seconds, exactly once.

Two real workers (prefork, one pool process each) on the test database and the configured
broker, at the production visibility timeout (Redis hands a dead worker's message out again
only after two hours), and the deadline runner played by this process: the sweep every second,
as beat sends it. The escalation is caught half-way for real: this test holds an uncommitted
Escalation row for the clock, so the worker's INSERT waits on the unique index with the ticket
and the clock locked; the test kills the pool process (the worker lives and gives the message
back) or the whole worker (nothing comes back from it), then lets go of its row.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from config.celery import app
from helpdesk.models import Notification, TaskDelivery
from tickets import services, sla
from tickets.models import Escalation, SlaPolicy, Ticket
from tickets.tasks import sweep_sla_clocks_task

from ..factories import CustomerFactory
from .test_worker_killed import Worker
from .test_worker_killed import pytestmark as worker_marks

pytestmark = worker_marks
REDO_BOUND = 5.0  # seconds from the kill to the escalation, the target
SWEEP_SECONDS = 1.0  # HELPDESK_SLA_SWEEP_SECONDS, as shipped


@pytest.fixture
def two_workers(tmp_path) -> Iterator[list[Worker]]:
    """Two workers on the default queue, where the sweep queues its checks; killed at the end."""
    app.control.purge()
    started = [Worker("celery", tmp_path / f"worker{n}.log", CELERY_VISIBILITY_TIMEOUT_SECONDS="7200") for n in (1, 2)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.kill()
        app.control.purge()


def chat_due_now(team) -> Ticket:
    policy = SlaPolicy.objects.create(name="redo: 1 s", position=0, channels=["other"])
    policy.targets.create(metric="first_response", seconds=1)
    sla.forget_policies()
    return services.open_ticket(customer=CustomerFactory(), subject="在吗", channel="other", body="在吗", team=team)


class HeldEscalation:
    """An uncommitted Escalation row for (clock, level 1), in a connection of its own."""

    def __init__(self, ticket: Ticket) -> None:
        settings = connection.settings_dict
        self.conn = psycopg.connect(
            dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"] or 5432,
            password=settings["PASSWORD"] or None,
        )
        clock = ticket.sla_clocks.get(metric="first_response")
        self.conn.execute(
            "INSERT INTO tickets_escalation (ticket_id, clock_id, kind, level, reason, created_at) "
            "VALUES (%s, %s, 'automatic', 1, 'held by the test', now())",
            [ticket.pk, clock.pk],
        )
        self.pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def waiting(self) -> bool:
        """A worker's INSERT is waiting for this row: it is in the middle of the escalation."""
        self.conn.execute("SELECT pg_stat_clear_snapshot()")  # else the first read stays for the transaction
        row = self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [self.pid]
        ).fetchone()
        return row[0] > 0

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def sweep_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """The deadline runner: a sweep every SWEEP_SECONDS until `predicate`."""
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_sweep:
            sweep_sla_clocks_task()
            next_sweep += SWEEP_SECONDS
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def the_busy_worker(workers: list[Worker], ticket: Ticket) -> Worker:
    """The worker whose task is held: the task guard's row of the check names its host."""
    hosts = set(TaskDelivery.objects.filter(name__startswith="tickets.check_sla_clock").values_list("worker", flat=True))
    busy = [w for w in workers if any(host.startswith(w.log.stem + "@") for host in hosts)]
    assert len(busy) == 1, (hosts, [w.output() for w in workers])
    return busy[0]


@pytest.mark.parametrize("killed", ["pool process", "whole worker"])
def test_an_escalation_whose_worker_is_killed_half_way_is_redone_within_the_bound_and_once(
    killed, two_workers, support_team, lena
):
    ticket = chat_due_now(support_team)
    held = HeldEscalation(ticket)
    try:
        assert sweep_until(held.waiting, 20), [w.output() for w in two_workers]
        busy = the_busy_worker(two_workers, ticket)
        if killed == "pool process":
            [child] = busy.pool_processes()
            os.kill(child, signal.SIGKILL)
        else:
            busy.kill()
        killed_at = timezone.now()
    finally:
        held.release()

    def escalated() -> bool:
        return Escalation.objects.filter(ticket=ticket, level=1).exists()

    assert sweep_until(escalated, 30), [w.output() for w in two_workers]
    redone_after = (Escalation.objects.get(ticket=ticket, level=1).created_at - killed_at).total_seconds()
    assert redone_after <= REDO_BOUND, redone_after
    # Exactly once: one row, one step up in priority, one audit row, one notification; and it stays so.
    time.sleep(SWEEP_SECONDS * 2)
    sweep_sla_clocks_task()
    ticket.refresh_from_db()
    assert Escalation.objects.filter(ticket=ticket).count() == 1
    assert ticket.priority == Ticket.Priority.HIGH
    assert ticket.history.filter(history_change_reason="sla_escalation:1").count() == 1
    assert Notification.objects.filter(recipient=lena.user, kind="sla_level_1").count() == 1
    survivors = [w for w in two_workers if w.alive()]
    assert survivors, "a worker is left to do the work"
