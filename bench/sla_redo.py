"""How soon an escalation lost with its worker is redone, on Redis or RabbitMQ; prints its figures.

Two workers (prefork, one pool process each, the production visibility timeout), and this
process as the deadline runner (a sweep every --sweep-seconds, as beat sends it). Each round
opens a chat with a 1-second target, holds an uncommitted Escalation row for its clock so the
worker that takes the check waits half-way (ticket and clock locked), kills that worker's pool
process or the whole worker with SIGKILL, lets go of the row, and times kill -> escalation.
Rounds alternate the two kills; a killed worker is started again. Every escalation is checked
to exist exactly once. Exits 1 when a round failed or went past --bound.

Usage: .venv/bin/python bench/sla_redo.py --broker amqp://guest:guest@127.0.0.1:5672/deadlines [--rounds 20]
         [--postgres-url URL] [--lease 3] [--sweep-seconds 1] [--bound 5]
The database named by --postgres-url is dropped and made anew.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _postgres  # bench/ is on the path when a benchmark runs

ROOT = _postgres.ROOT


class Worker:
    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, folder / f"{name}.log"
        before = self.log.read_text(errors="replace").count(" ready.") if self.log.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--loglevel=INFO",
             "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while self.log.read_text(errors="replace").count(" ready.") <= before:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"{name} did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def pool(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


def one_round(kind: str, workers: dict[str, Worker], sweep_seconds: float) -> tuple[float, str]:
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from helpdesk.models import Customer, TaskDelivery
    from tickets import services
    from tickets.models import Escalation
    from tickets.tasks import sweep_sla_clocks_task

    ticket = services.open_ticket(customer=Customer.objects.create(name="压测"), subject="在吗", channel="other", body="在吗")
    clock = ticket.sla_clocks.get(metric="first_response")
    held = psycopg.connect(os.environ["DATABASE_URL"])
    held.execute(
        "INSERT INTO tickets_escalation (ticket_id, clock_id, kind, level, reason, created_at) "
        "VALUES (%s, %s, 'automatic', 1, 'held', now())", [ticket.pk, clock.pk],
    )
    me = held.execute("SELECT pg_backend_pid()").fetchone()[0]

    def sweep_until(predicate, timeout: float) -> bool:
        deadline, next_sweep = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            if time.monotonic() >= next_sweep:
                sweep_sla_clocks_task()
                next_sweep += sweep_seconds
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def waiting() -> bool:
        held.execute("SELECT pg_stat_clear_snapshot()")
        return held.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [me]).fetchone()[0] > 0

    try:
        if not sweep_until(waiting, 30):
            raise SystemExit("no worker took the check")
        hosts = set(TaskDelivery.objects.filter(name__startswith="tickets.check_sla_clock").values_list("worker", flat=True))
        [busy] = [w for w in workers.values() if any(h.startswith(w.name + "@") for h in hosts)]
        if kind == "pool process":
            [child] = busy.pool()
            os.kill(child, signal.SIGKILL)
        else:
            busy.kill()
        killed_at = timezone.now()
    finally:
        held.rollback()
        held.close()
    if not sweep_until(lambda: Escalation.objects.filter(ticket=ticket, level=1).exists(), 120):
        raise SystemExit("never redone")
    redone = (Escalation.objects.get(ticket=ticket, level=1).created_at - killed_at).total_seconds()
    TaskDelivery.objects.all().delete()
    connection.close()
    return redone, busy.name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/bench_deadlines")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--lease", type=int, default=3, help="SLA_CLAIM_LEASE_SECONDS")
    parser.add_argument("--sweep-seconds", type=float, default=1.0, help="how often the runner sweeps")
    parser.add_argument("--bound", type=float, default=5.0)
    opts = parser.parse_args()
    env = {**os.environ, **_postgres.bench_env(
        opts.postgres_url, CELERY_BROKER_URL=opts.broker, SLA_CLAIM_LEASE_SECONDS=str(opts.lease),
        CELERY_VISIBILITY_TIMEOUT_SECONDS="7200", TASK_MAX_DELIVERIES="100", LOG_FORMAT="plain",
    )}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    _postgres.fresh_database(opts.postgres_url, env)
    import django

    django.setup()
    from config.celery import app
    from tickets import sla
    from tickets.models import Escalation, SlaPolicy

    policy = SlaPolicy.objects.create(name="redo: 1 s", position=0, channels=["other"])
    policy.targets.create(metric="first_response", seconds=1)
    sla.forget_policies()
    app.control.purge()
    folder = Path(tempfile.mkdtemp(prefix="sla-redo-"))
    print(f"load average before: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}  (logs in {folder})")
    workers = {name: Worker(name, folder, env) for name in ("w1", "w2")}
    times: dict[str, list[float]] = {"pool process": [], "whole worker": []}
    try:
        for n in range(opts.rounds):
            kind = ("pool process", "whole worker")[n % 2]
            redone, name = one_round(kind, workers, opts.sweep_seconds)
            times[kind].append(redone)
            if workers[name].process.poll() is not None:  # the whole worker was killed: start it again
                workers[name] = Worker(name, folder, env)
    finally:
        for worker in workers.values():
            worker.kill()
        app.control.purge()
    doubled = Escalation.objects.values("clock", "level").order_by().annotate(n=django.db.models.Count("id")).filter(n__gt=1)
    print(f"broker {opts.broker}, claim lease {opts.lease} s, sweep every {opts.sweep_seconds} s, {opts.rounds} rounds")
    worst = 0.0
    for kind, values in times.items():
        values.sort()
        if values:
            worst = max(worst, values[-1])
            p99 = values[max(0, int(len(values) * 0.99) - 1)]
            print(f"{kind} killed: kill -> escalation p50 {statistics.median(values):.2f} s, p99 {p99:.2f} s, "
                  f"max {values[-1]:.2f} s ({len(values)} rounds; target <= {opts.bound})")
    print(f"escalations done twice: {doubled.count()}; load average after: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
    sys.exit(1 if worst > opts.bound or doubled.exists() else 0)


if __name__ == "__main__":
    main()
