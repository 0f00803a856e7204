"""SLA benchmarks on PostgreSQL and Redis; prints its figures.

1. Sweep: with N open tickets (two clocks each: first response met, resolution running) and
   1,000 clocks due, the time of one sweep (claim the due clocks, queue their checks on Redis),
   at 100,000 and at 1,000,000 open tickets, with the EXPLAIN of the claim.
2. Deadline to escalation: a real Celery worker on Redis, new chats at a steady rate through
   the services, each with a first-response target of 15 s; p50/p99 of the delay from each
   deadline to its escalation row.

Usage: .venv/bin/python bench/sla_sweep.py [--big 1000000] [--rate 100] [--seconds 30] [--skip-latency]
Needs PostgreSQL at BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/helpdesk_slabench,
dropped and made anew) and Redis at BENCH_REDIS_URL (default redis://127.0.0.1:6379/14).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _postgres  # bench/ is on the path when a benchmark runs

ROOT = _postgres.ROOT
URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/helpdesk_slabench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ENV = _postgres.bench_env(URL, CELERY_BROKER_URL=REDIS)


def fresh_database() -> None:
    _postgres.fresh_database(URL, ENV)


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
    return statistics.median(times), handed


def explain() -> str:
    from django.db import connection
    from django.utils import timezone

    from tickets.models import SlaClock

    query = SlaClock.objects.filter(next_check_at__lte=timezone.now()).order_by("next_check_at").values_list("pk")[:1000]
    sql_text, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql_text, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def sweep_benchmark(big: int) -> None:
    import redis

    results = {}
    for size in (100_000, big):
        fill(size)
        redis.Redis.from_url(REDIS).flushdb()
        results[size] = sweep_times(5)
    plan = explain()
    for size, (seconds, handed) in results.items():
        print(f"sweep, {size:>9,} open tickets, {handed} clocks due: {seconds * 1000:7.1f} ms (median of 5; target <= 1000)")
    print(f"growth 100k -> {big:,}: {results[big][0] / results[100_000][0]:.2f}x (target <= 1.5)")
    print("EXPLAIN of the claim:\n  " + plan.replace("\n", "\n  "))


def latency_benchmark(rate: int, seconds: int) -> None:
    """New chats at `rate` a second for `seconds`; then wait for every escalation."""
    import redis

    from helpdesk.models import Customer
    from tickets import services
    from tickets.models import Escalation, SlaClock

    redis.Redis.from_url(REDIS).flushdb()
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "--pool=prefork", "-c", "2",
         "--loglevel=WARNING"],
        cwd=ROOT, env={**os.environ, **ENV},
    )
    try:
        time.sleep(5)
        customer = Customer.objects.create(name="压测客户")
        opened = []
        started = time.perf_counter()
        for index in range(rate * seconds):
            wait = started + index / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            ticket = services.open_ticket(customer=customer, subject="在吗", channel="web_chat", body="在吗")
            opened.append(ticket.pk)
        late = time.perf_counter() - started - seconds
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Escalation.objects.filter(ticket_id__in=opened, level=1).count() == len(opened):
                break
            time.sleep(1)
        delays = []
        due = dict(SlaClock.objects.filter(ticket_id__in=opened, metric="first_response").values_list("pk", "due_at"))
        for clock_id, created in Escalation.objects.filter(ticket_id__in=opened, level=1).values_list("clock_id", "created_at"):
            delays.append((created - due[clock_id]).total_seconds())
        delays.sort()
        print(
            f"deadline -> escalation, {len(opened)} chats at {rate}/s (the load generator fell {late:.1f} s behind): "
            f"{len(delays)} escalated, p50 {statistics.median(delays):.3f} s, p99 {delays[int(len(delays) * 0.99) - 1]:.3f} s, "
            f"max {delays[-1]:.3f} s (target p99 <= 2)"
        )
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    fresh_database()
    import django

    django.setup()
    if not args.skip_sweep:
        sweep_benchmark(args.big)
    if not args.skip_latency:
        latency_benchmark(args.rate, args.seconds)


if __name__ == "__main__":
    main()
