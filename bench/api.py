"""API benchmarks on PostgreSQL behind gunicorn; prints its figures.

1. Throughput: POST /api/v1/tickets/ (create a ticket with its customer and first message)
   against GET /api/v1/me (a bare authenticated DRF endpoint: key lookup, throttle, a dict),
   on an empty ticket table, driven by wrk.
2. List latency: p50/p95 of GET /api/v1/tickets/ (and filtered variants) at 10,000 tickets and
   at --big tickets (1,000,000), with the query count of one request.
3. Create on the big table: POST /api/v1/tickets/ on the --big database (every agent holding
   tens of thousands of open tickets), alternated round by round with create on the empty one,
   so both figures come from one stretch of the machine's (noisy) time.

Two databases: --database-url (filled to --big) and the same name with `_empty` (kept empty),
each behind its own gunicorn (--port, --port + 1). Both are dropped and made anew.

Usage: .venv/bin/python bench/api.py [--seconds 15] [--rounds 2] [--big 1000000] [--skip-list]
    [--database-url postgres://…/helpdesk_apibench] [--redis-url redis://…/13] [--port 8011]
Needs wrk (apt-get install wrk). Exits non-zero on any non-2xx answer or a round with no request.
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

import _common  # bench/ is on the path when a benchmark runs

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

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


def env(url: str, redis: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DATABASE_CONN_MAX_AGE": "600",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
        # New chats queue an ETA task for their 15-second SLA deadline: on Redis, as in production.
        "CELERY_BROKER_URL": redis,
    }


class Site:
    """One database behind one gunicorn."""

    def __init__(self, url: str, redis: str, port: int) -> None:
        self.url, self.redis, self.port = url, redis, port
        self.server: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env(self.url, self.redis),
            check=True, capture_output=True, text=True,
        ).stdout

    def psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def fresh_database(self) -> str:
        """Drop, make, migrate and seed the database (no tickets); returns a write API key."""
        import psycopg

        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.manage("migrate", "--no-input")
        self.manage("seed_demo", "--tickets", "0")
        # Every agent online, as on a working day: routing reads the load of each agent of the
        # team a create goes to (the demo leaves that team, 其余咨询, with nobody online).
        self.psql("UPDATE helpdesk_agent SET presence = 'online'")
        return self.manage("create_api_key", "bench", "--scope", "write").strip().splitlines()[-1]

    def start(self, workers: int) -> None:
        self.server = subprocess.Popen(
            [str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", str(workers),
             "--log-level", "warning"],
            cwd=ROOT, env=env(self.url, self.redis),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # an answer, not just the master's socket: a worker is up
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/api/v1/me")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.5)
        raise SystemExit(f"gunicorn did not answer on port {self.port} in 120 s")

    def stop(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=30)


def wrk(port: int, path: str, key: str, seconds: int, script: str | None = None) -> float:
    """Requests per second wrk sustains (2 threads, 8 connections); non-2xx or none is a failure."""
    # A 60 s timeout (wrk's default is 2 s): on a busy 2-core machine a slow answer is not an
    # error, while one that never comes still is.
    args = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "60s", "-H", f"Authorization: Bearer {key}"]
    if script:
        args += ["-s", script]
    out = subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"FAILED: errors during the run:\n{out}")
    done = re.search(r"(\d+) requests in", out)
    if not done or int(done.group(1)) == 0:
        print(out, file=sys.stderr)
    _common.require(int(done.group(1)) if done else 0, 1, f"requests to {path} in {seconds} s")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def create_script(key: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'auth = "Bearer {key}"\n' + CREATE_LUA)
    return lua.name


def rounds_line(name: str, rates: list[float]) -> str:
    return f"{name:<36} {statistics.median(rates):8.1f} req/s   (rounds: {', '.join(f'{x:.0f}' for x in rates)})"


def throughput(site: Site, key: str, seconds: int, rounds: int) -> float:
    """Bare /me against create, alternated, on the empty table; returns the create median."""
    lua = create_script(key)
    bare, create = [], []
    for _ in range(rounds):
        bare.append(wrk(site.port, "/api/v1/me", key, seconds))
        create.append(wrk(site.port, "/api/v1/tickets/", key, seconds, lua))
    os.unlink(lua)
    _common.measured(create, rounds, "create rounds")
    b, c = statistics.median(bare), statistics.median(create)
    print(rounds_line("bare GET /api/v1/me", bare))
    print(rounds_line("POST /api/v1/tickets/ (empty table)", create))
    print(f"{'ratio create / bare':<36} {c / b:8.2f}     (target >= 0.40)")
    return c


def create_big_against_empty(empty: tuple[Site, str], big: tuple[Site, str], size: int, seconds: int, rounds: int) -> None:
    """Create on the empty and on the big table, round by round; prints both and their ratio."""
    scripts = {site.port: create_script(key) for site, key in (empty, big)}
    rates: dict[int, list[float]] = {empty[0].port: [], big[0].port: []}
    for _ in range(rounds):
        for site, key in (empty, big):
            rates[site.port].append(wrk(site.port, "/api/v1/tickets/", key, seconds, scripts[site.port]))
    for name in scripts.values():
        os.unlink(name)
    on_empty = _common.measured(rates[empty[0].port], rounds, "create rounds on the empty table")
    on_big = _common.measured(rates[big[0].port], rounds, f"create rounds at {size:,} tickets")
    print(rounds_line("POST /api/v1/tickets/ (empty table)", list(on_empty)))
    print(rounds_line(f"POST /api/v1/tickets/ ({size:,} tickets)", list(on_big)))
    ratio = statistics.median(on_big) / statistics.median(on_empty)
    print(f"{'create big / create empty':<36} {ratio:8.2f}     (target >= 0.85)")


def fill_tickets(site: Site, total: int, *, vacuum: bool = True) -> None:
    """Insert tickets in SQL up to `total` (INSERT … SELECT generate_series, then VACUUM ANALYZE).

    With `vacuum=False` only ANALYZE runs and autovacuum is kept off the table: the state right
    after a bulk load, before autovacuum has set the visibility map (the planner then prefers
    bitmap scans, which read every index entry of an agent's load).

    About 36% are new or open and nearly all are assigned, so each of the demo's agents holds
    tens of thousands of open tickets at 1M: routing's load count meets the worst case.
    """
    if not vacuum:  # before the insert, so that autovacuum cannot pass while it runs
        site.psql("ALTER TABLE tickets_ticket SET (autovacuum_enabled = false)")
    site.psql(
        """
        INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
        SELECT '', '客户 ' || g, '137' || lpad(g::text, 8, '0'), '', 'standard', 'zh-hans', now(), now()
        FROM generate_series((SELECT count(*) FROM helpdesk_customer) + 1, 5000) AS g
        """
    )
    site.psql(
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
    site.psql("VACUUM ANALYZE tickets_ticket" if vacuum else "ANALYZE tickets_ticket")


def latencies(port: int, key: str, path: str, n: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"FAILED: {path} answered {response.status}")
        timings.append((time.perf_counter() - started) * 1000)
    _common.measured(timings, n, f"requests to {path}")
    timings.sort()
    return statistics.median(timings), timings[max(int(len(timings) * 0.95) - 1, 0)]


LIST_PATHS = {
    "list (default page of 50)": "/api/v1/tickets/",
    "list, page_size=200": "/api/v1/tickets/?page_size=200",
    "list, status=open": "/api/v1/tickets/?status=open",
    "list, team=1&priority=urgent": "/api/v1/tickets/?team=1&priority=urgent",
    "list, updated_after (sync)": "/api/v1/tickets/?ordering=updated_at&updated_after=2026-01-01T00:00:00Z",
}


def list_at(site: Site, key: str, size: int, n: int, results: dict, *, vacuum: bool = True) -> None:
    started = time.monotonic()
    fill_tickets(site, size, vacuum=vacuum)
    state = "VACUUM ANALYZE" if vacuum else "ANALYZE only, autovacuum off"
    print(f"filled to {size:,} tickets in {time.monotonic() - started:.0f} s ({state})", flush=True)
    if n:
        for name, path in LIST_PATHS.items():
            latencies(site.port, key, path, 5)  # warm up
            results[(size, name)] = latencies(site.port, key, path, n)


def print_lists(big: int, results: dict) -> None:
    for name in LIST_PATHS:
        small_p50, small_p95 = results[(10_000, name)]
        big_p50, big_p95 = results[(big, name)]
        print(
            f"{name:<32} 10k p50 {small_p50:6.1f} p95 {small_p95:6.1f} ms | {big:,} p50 {big_p50:6.1f} "
            f"p95 {big_p95:6.1f} ms | p95 ratio {big_p95 / small_p95:4.2f} (target <= 2)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="seconds of each wrk round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each throughput figure")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of each site")
    parser.add_argument("--big", type=int, default=1_000_000, help="tickets of the big table")
    parser.add_argument("--requests", type=int, default=200, help="list requests timed per path and size")
    parser.add_argument("--skip-list", action="store_true", help="no list latency (the big table is still filled)")
    parser.add_argument("--skip-throughput", action="store_true", help="no /me-against-create figure")
    parser.add_argument("--skip-big-create", action="store_true", help="no create on the big table")
    parser.add_argument(
        "--no-vacuum", action="store_true",
        help="leave the big table as a bulk load does: ANALYZE only, autovacuum off (no visibility map)",
    )
    _common.add_target_options(
        parser, database="postgres://postgres@127.0.0.1:5432/helpdesk_apibench",
        redis="redis://127.0.0.1:6379/13", ports={"port": 8011},
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    if min(args.seconds, args.rounds, args.workers) < 1 or args.big < 10_000 or args.requests < 0:
        raise SystemExit("--seconds, --rounds and --workers must be >= 1, --big >= 10000, --requests >= 0")
    big = Site(args.database_url, args.redis_url, args.port)
    empty = Site(args.database_url + "_empty", args.redis_url, args.port + 1)
    with _common.machine():
        big_key, empty_key = big.fresh_database(), empty.fresh_database()
        try:
            big.start(args.workers)
            empty.start(args.workers)
            for site, key in ((big, big_key), (empty, empty_key)):
                latencies(site.port, key, "/api/v1/me", 20)  # every worker has imported and connected
            print(f"gunicorn {args.workers} workers a site, PostgreSQL, wrk 2 threads / 8 connections, "
                  f"{args.seconds}s x {args.rounds}", flush=True)
            if not args.skip_throughput:
                throughput(empty, empty_key, args.seconds, args.rounds)
            results: dict = {}
            if not (args.skip_list and args.skip_big_create):
                n = 0 if args.skip_list else args.requests
                list_at(big, big_key, 10_000, n, results)
                list_at(big, big_key, args.big, n, results, vacuum=not args.no_vacuum)
            if not args.skip_list:
                print_lists(args.big, results)
            if not args.skip_big_create:
                print(_common.load_average(), flush=True)
                create_big_against_empty((empty, empty_key), (big, big_key), args.big, args.seconds, args.rounds)
        finally:
            big.stop()
            empty.stop()


if __name__ == "__main__":
    main()
