"""API benchmarks on PostgreSQL behind gunicorn; prints its figures.

1. Throughput: POST /api/v1/tickets/ (create a ticket with its customer and first message)
   against GET /api/v1/me (a bare authenticated DRF endpoint: key lookup, throttle, a dict),
   both served by the same gunicorn, driven by wrk, alternated in one run.
2. List latency: p50/p95 of GET /api/v1/tickets/ (and filtered variants) at 10,000 tickets and
   at 1,000,000 tickets, with the query count of one request.

Usage: .venv/bin/python bench/api.py [--seconds 15] [--rounds 2] [--big 1000000] [--skip-list]
Needs wrk (apt-get install wrk) and PostgreSQL at BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432/helpdesk_apibench, dropped and made anew).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/helpdesk_apibench")
PORT = 8011

CREATE_LUA = r"""
counter = 0
request = function()
  counter = counter + 1
  local phone = string.format("139%08d", math.random(0, 99999999))
  local body = '{"subject":"物流查询","channel":"web_chat","category":"delivery","priority":"normal",' ..
    '"customer":{"name":"压测客户","phone":"' .. phone .. '"},' ..
    '"message":{"body":"我的快递到哪了？"}}'
  return wrk.format("POST", "/api/v1/tickets/", {["Content-Type"]="application/json", ["Authorization"]=auth}, body)
end
"""


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": URL,
        "DATABASE_CONN_MAX_AGE": "600",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
        # New chats queue an ETA task for their 15-second SLA deadline: on Redis, as in production.
        "CELERY_BROKER_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
    }


def manage(*args: str) -> str:
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env(), check=True, capture_output=True, text=True
    ).stdout


def psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(sql)


def fresh_database() -> None:
    import psycopg

    name = URL.rsplit("/", 1)[1]
    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--no-input")
    manage("seed_demo", "--tickets", "0")


def gunicorn(workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", str(workers), "--log-level", "warning"],
        cwd=ROOT, env=env(),
    )
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/api/schema/")
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def wrk(path: str, key: str, seconds: int, script: str | None = None) -> float:
    """Requests per second wrk sustains (2 threads, 8 connections); non-2xx are a failure."""
    args = ["wrk", "-t2", "-c8", f"-d{seconds}s", "-H", f"Authorization: Bearer {key}"]
    if script:
        args += ["-s", script]
    out = subprocess.run([*args, f"http://127.0.0.1:{PORT}{path}"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"errors during the run:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def throughput(key: str, seconds: int, rounds: int) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'auth = "Bearer {key}"\n' + CREATE_LUA)
    bare, create = [], []
    for _ in range(rounds):
        bare.append(wrk("/api/v1/me", key, seconds))
        create.append(wrk("/api/v1/tickets/", key, seconds, lua.name))
    os.unlink(lua.name)
    b, c = statistics.median(bare), statistics.median(create)
    print(f"bare GET /api/v1/me          {b:8.1f} req/s   (rounds: {', '.join(f'{x:.0f}' for x in bare)})")
    print(f"POST /api/v1/tickets/        {c:8.1f} req/s   (rounds: {', '.join(f'{x:.0f}' for x in create)})")
    print(f"ratio create / bare          {c / b:8.2f}     (target >= 0.40)")


def fill_tickets(total: int) -> None:
    """Insert tickets in SQL up to `total`: the list endpoint reads tickets, not conversations."""
    psql(
        """
        INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
        SELECT '', '客户 ' || g, '137' || lpad(g::text, 8, '0'), '', 'standard', 'zh-hans', now(), now()
        FROM generate_series((SELECT count(*) FROM helpdesk_customer) + 1, 5000) AS g
        """
    )
    psql(
        f"""
        INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, category_id,
            priority, status, team_id, assignee_id, created_at, updated_at,
            requester_wait_seconds, agent_work_seconds, public_replies, reopens)
        SELECT '批量工单 ' || g, '', '', c.ids[1 + g % array_length(c.ids, 1)],
            (ARRAY['web_chat','app_chat','wechat','email','phone'])[1 + (g * 7919) % 5],
            cat.ids[1 + (g * 104729) % array_length(cat.ids, 1)],
            (ARRAY['low','normal','high','urgent'])[1 + (g * 31) % 7 % 4],
            (ARRAY['new','open','pending','on_hold','solved','closed'])[1 + (g * 13) % 11 % 6],
            t.ids[1 + (g * 17) % 13 % array_length(t.ids, 1)], a.ids[1 + (g * 53) % 19 % array_length(a.ids, 1)],
            now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval, 0, 0, 0, 0
        FROM generate_series((SELECT count(*) FROM tickets_ticket) + 1, {total}) AS g,
            (SELECT array_agg(id) AS ids FROM helpdesk_customer) c,
            (SELECT array_agg(id) AS ids FROM tickets_category) cat,
            (SELECT array_agg(id) AS ids FROM helpdesk_team) t,
            (SELECT array_agg(id) AS ids FROM helpdesk_agent) a
        """
    )
    psql("ANALYZE tickets_ticket")


def latencies(key: str, path: str, n: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


LIST_PATHS = {
    "list (default page of 50)": "/api/v1/tickets/",
    "list, page_size=200": "/api/v1/tickets/?page_size=200",
    "list, status=open": "/api/v1/tickets/?status=open",
    "list, team=1&priority=urgent": "/api/v1/tickets/?team=1&priority=urgent",
    "list, updated_after (sync)": "/api/v1/tickets/?ordering=updated_at&updated_after=2026-01-01T00:00:00Z",
}


def list_latency(key: str, big: int, n: int) -> None:
    results = {}
    for size in (10_000, big):
        fill_tickets(size)
        for name, path in LIST_PATHS.items():
            latencies(key, path, 5)  # warm up
            results[(size, name)] = latencies(key, path, n)
    for name in LIST_PATHS:
        small_p50, small_p95 = results[(10_000, name)]
        big_p50, big_p95 = results[(big, name)]
        print(
            f"{name:<32} 10k p50 {small_p50:6.1f} p95 {small_p95:6.1f} ms | {big:,} p50 {big_p50:6.1f} "
            f"p95 {big_p95:6.1f} ms | p95 ratio {big_p95 / small_p95:4.2f} (target <= 2)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-list", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    fresh_database()
    key = manage("create_api_key", "bench", "--scope", "write").strip().splitlines()[-1]
    server = gunicorn(args.workers)
    try:
        print(f"gunicorn {args.workers} workers, PostgreSQL, wrk 2 threads / 8 connections, {args.seconds}s x {args.rounds}")
        if not args.skip_throughput:
            throughput(key, args.seconds, args.rounds)
        if not args.skip_list:
            psql("TRUNCATE tickets_ticket, tickets_message, tickets_historicalticket CASCADE")
            list_latency(key, args.big, args.requests)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
