"""SLA benchmarks on PostgreSQL and a real broker (Redis or RabbitMQ); prints its figures.

1. Sweep: with N open tickets (two clocks each: first response met, resolution running) and
   1,000 clocks due, the time of one sweep (claim the due clocks, queue their checks), at
   100,000 and at N open tickets, with the EXPLAIN of the claim.
2. Deadline to escalation, as production runs it: a Celery worker, a separate `celery beat`
   (the deadline runner), and the load generator in a process of its own opening web chats
   through the services at a steady rate, each with the shipped 15-second first-response target
   that nobody meets. Prints p50/p99/max of deadline -> level-1 escalation, the broker's queue
   depth, the worker's CPU and the load average before and after.

A run that escalated fewer chats than it opened (or measured nothing) exits with status 1.

Usage: .venv/bin/python bench/sla_sweep.py [--skip-sweep] [--rate 100] [--seconds 30]
         [--database-url URL] [--broker URL] [--concurrency 2] [--sweep-seconds 1] [--horizon 0] [--lease 3]
The database named by --database-url is dropped and made anew.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs
import _postgres

ROOT = _postgres.ROOT
BIN = Path(sys.executable).parent


def sql(statement: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement)


def fill(total: int) -> None:
    """Open tickets up to `total`, each with a met first-response clock and a running resolution clock."""
    sql(
        """INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
           SELECT '', '客户 ' || g, '137' || lpad(g::text, 8, '0'), '', 'standard', 'zh-hans', now(), now()
           FROM generate_series((SELECT count(*) FROM helpdesk_customer) + 1, 5000) AS g"""
    )
    sql(
        f"""INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, priority, status,
                created_at, updated_at, requester_wait_seconds, agent_work_seconds, public_replies, reopens)
            SELECT '工单 ' || g, '', '', c.ids[1 + g % array_length(c.ids, 1)], 'web_chat', 'normal', 'open',
                now() - interval '1 hour', now(), 0, 0, 0, 0
            FROM generate_series((SELECT count(*) FROM tickets_ticket) + 1, {total}) AS g,
                (SELECT array_agg(id) AS ids FROM helpdesk_customer) c"""
    )
    sql(
        """INSERT INTO tickets_slaclock (ticket_id, metric, target_seconds, started_at, due_at, fulfilled_at, escalation_level)
           SELECT t.id, 'first_response', 15, t.created_at, t.created_at + interval '15 seconds',
                  t.created_at + interval '10 seconds', 0
           FROM tickets_ticket t WHERE NOT EXISTS (SELECT 1 FROM tickets_slaclock k WHERE k.ticket_id = t.id)"""
    )
    sql(
        """INSERT INTO tickets_slaclock (ticket_id, metric, target_seconds, started_at, due_at, warn_at, next_check_at, escalation_level)
           SELECT t.id, 'resolution', 97200, t.created_at, now() + interval '20 hours' + (t.id % 1000) * interval '1 minute',
                  now() + interval '16 hours', now() + interval '16 hours' + (t.id % 1000) * interval '1 minute', 0
           FROM tickets_ticket t WHERE NOT EXISTS (
               SELECT 1 FROM tickets_slaclock k WHERE k.ticket_id = t.id AND k.metric = 'resolution')"""
    )
    sql("ANALYZE tickets_ticket; ANALYZE tickets_slaclock")


def make_due(count: int) -> None:
    sql(
        f"""UPDATE tickets_slaclock SET next_check_at = now() - interval '1 second'
            WHERE id IN (SELECT id FROM tickets_slaclock WHERE metric = 'resolution' ORDER BY id DESC LIMIT {count})"""
    )


def sweep_times(rounds: int) -> tuple[float, int]:
    from django.db import connection

    from tickets.tasks import sweep_sla_clocks_task

    times, handed = [], 0
    for _ in range(rounds):
        make_due(1000)
        started = time.perf_counter()
        handed = sweep_sla_clocks_task()
        times.append(time.perf_counter() - started)
        connection.close()
        _common.require(handed, 1, "clocks handed on by a sweep")
    return statistics.median(_common.measured(times, rounds, "sweeps")), handed


def explain() -> str:
    from django.db import connection
    from django.utils import timezone

    from tickets.models import SlaClock

    query = SlaClock.objects.filter(next_check_at__lte=timezone.now()).order_by("next_check_at").values_list("pk")[:1000]
    sql_text, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql_text, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def purge_broker() -> None:
    from config.celery import app

    app.control.purge()


def sweep_benchmark(big: int) -> None:
    results = {}
    for size in (100_000, big):
        fill(size)
        purge_broker()
        results[size] = sweep_times(5)
    purge_broker()
    plan = explain()
    for size, (seconds, handed) in results.items():
        print(f"sweep, {size:>9,} open tickets, {handed} clocks due: {seconds * 1000:7.1f} ms (median of 5; target <= 1000)")
    print(f"growth 100k -> {big:,}: {results[big][0] / results[100_000][0]:.2f}x (target <= 1.5)")
    print("EXPLAIN of the claim:\n  " + plan.replace("\n", "\n  "))


# --- deadline to escalation ------------------------------------------------------------------


def generate(rate: int, seconds: int, out: str) -> None:
    """The load generator, in its own process: `rate` new chats a second for `seconds`."""
    from helpdesk.models import Customer
    from tickets import services

    customer = Customer.objects.create(name="压测客户")
    opened, behind = [], 0.0
    started = time.perf_counter()
    for index in range(rate * seconds):
        wait = started + index / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            behind = max(behind, -wait)
        ticket = services.open_ticket(customer=customer, subject="在吗", channel="web_chat", body="在吗")
        opened.append(ticket.pk)
    Path(out).write_text(json.dumps({"opened": opened, "behind": behind}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (a prefork worker's pool), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pids = 0.0, [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            pids += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def queue_depth() -> int:
    from config.celery import app

    from amqp.exceptions import ChannelError

    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue="celery", passive=True).message_count
        except ChannelError:  # Redis: an empty queue has no key
            return 0


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", *args], cwd=ROOT, env=env, stdout=log.open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_ready(log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def latency_benchmark(opts: argparse.Namespace, env: dict[str, str]) -> int:
    """New chats at `rate` a second for `seconds`; then wait for every escalation. Exit status."""
    from tickets.models import Escalation, SlaClock

    purge_broker()
    folder = Path(tempfile.mkdtemp(prefix="sla-bench-"))
    worker_log, beat_log = folder / "worker.log", folder / "beat.log"
    print(f"{_common.load_average()}  (logs in {folder})")
    worker = start(["worker", f"--concurrency={opts.concurrency}", "--loglevel=INFO"], worker_log, env)
    beat = generator = None
    try:
        wait_ready(worker_log)
        beat = start(["beat", "--loglevel=INFO", "--schedule", str(folder / "celerybeat-schedule")], beat_log, env)
        out = folder / "opened.json"
        cpu_before, clock_before = cpu_seconds(worker.pid), time.monotonic()
        generator = subprocess.Popen(
            [sys.executable, __file__, "--generate-to", str(out), "--rate", str(opts.rate), "--seconds", str(opts.seconds)],
            cwd=ROOT, env=env,
        )
        depths = []
        while generator.poll() is None:
            depths.append(queue_depth())
            time.sleep(0.5)
        if generator.returncode:
            print(f"the load generator failed (status {generator.returncode})")
            return 1
        run = json.loads(out.read_text())
        opened = run["opened"]
        wanted = len(opened)
        deadline = time.monotonic() + 15 + 60  # the last chat's 15 s, then a minute
        while time.monotonic() < deadline:
            depths.append(queue_depth())
            if Escalation.objects.filter(ticket_id__in=opened, level=1).count() >= wanted:
                break
            time.sleep(0.5)
        cpu = cpu_seconds(worker.pid) - cpu_before
        wall = time.monotonic() - clock_before
    finally:
        for process in (generator, beat, worker):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
    due = dict(SlaClock.objects.filter(ticket_id__in=opened, metric="first_response").values_list("pk", "due_at"))
    delays = sorted(
        (created - due[clock_id]).total_seconds()
        for clock_id, created in Escalation.objects.filter(ticket_id__in=opened, level=1).values_list("clock_id", "created_at")
    )
    print(
        f"sweep every {env['HELPDESK_SLA_SWEEP_SECONDS']} s, ETA horizon {env['SLA_PRECISE_HORIZON_SECONDS']} s, "
        f"claim lease {env['SLA_CLAIM_LEASE_SECONDS']} s, worker concurrency {opts.concurrency}, broker {opts.broker}"
    )
    print(f"{wanted} chats at {opts.rate}/s; the load generator fell at most {run['behind']:.2f} s behind")
    if depths:
        print(f"queue depth: median {statistics.median(depths):.0f}, max {max(depths)} (sampled every 0.5 s)")
    print(f"worker CPU: {cpu:.1f} s in {wall:.1f} s ({cpu / wall:.0%} of one core)")
    print(f"{_common.load_average()}, after the run")
    if not delays or len(delays) < wanted:
        print(f"FAILED: {len(delays)} of {wanted} chats escalated")
        return 1
    p99 = delays[max(0, int(len(delays) * 0.99) - 1)]
    print(
        f"deadline -> escalation: {len(delays)} escalated, p50 {statistics.median(delays):.3f} s, "
        f"p99 {p99:.3f} s, max {delays[-1]:.3f} s (target p99 <= 2)"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    _common.add_target_options(parser, database="postgres://postgres@127.0.0.1:5432/bench_deadlines")
    parser.add_argument("--broker", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--sweep-seconds", type=int, default=1, help="HELPDESK_SLA_SWEEP_SECONDS")
    parser.add_argument("--horizon", type=int, default=0, help="SLA_PRECISE_HORIZON_SECONDS (0: no ETA tasks)")
    parser.add_argument("--lease", type=int, default=3, help="SLA_CLAIM_LEASE_SECONDS")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--generate-to", help=argparse.SUPPRESS)  # the load generator's own process
    opts = parser.parse_args()
    if opts.generate_to:
        import django

        sys.path.insert(0, str(ROOT))
        django.setup()
        generate(opts.rate, opts.seconds, opts.generate_to)
        return
    env = _postgres.bench_env(
        opts.database_url, CELERY_BROKER_URL=opts.broker, HELPDESK_SLA_SWEEP_SECONDS=str(opts.sweep_seconds),
        SLA_PRECISE_HORIZON_SECONDS=str(opts.horizon), SLA_CLAIM_LEASE_SECONDS=str(opts.lease),
        HELPDESK_VAR_DIR=tempfile.mkdtemp(prefix="sla-bench-var-"),
    )
    env = {**os.environ, **env}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    with _common.machine():
        _postgres.fresh_database(opts.database_url, env)
        import django

        django.setup()
        if not opts.skip_sweep:
            sweep_benchmark(opts.big)
        status = 0 if opts.skip_latency else latency_benchmark(opts, env)
    sys.exit(status)


if __name__ == "__main__":
    main()
