"""Load: many API clients mixing reads and writes against gunicorn, PostgreSQL, Redis and Celery.

The production set-up of docs/deploy.md on one machine, then wrk's clients against it:

- PostgreSQL 15: a private cluster `load` on port 5435 made for the run (trust auth on
  127.0.0.1, Debian's default configuration: max_connections 100, shared_buffers 128MB) and
  dropped after it, or the database named by --database-url (dropped and made anew, dropped after).
  Migrated, then `manage.py seed_demo --tickets N` (teams, agents, routing rules, customers, N
  tickets with their conversations, the demo knowledge base) and the 231 labelled articles of
  bench/kb_search/ published through the services, as bench/kb_search.py loads them.
- Redis db 14 (flushed before and after) as the Celery broker and the shared cache (CACHE_URL),
  so the API throttle holds across gunicorn's workers.
- gunicorn with config/gunicorn.py (sync workers: its default 2 x cores + 1, or --workers),
  DEBUG off, persistent connections (DATABASE_CONN_MAX_AGE=60, as docs/deploy.md advises),
  the app's JSON access log to a file; one Celery worker (--concurrency 2) and one beat, so the
  SLA sweeps, routing and webhook deliveries run as in production. One webhook endpoint
  subscribed to ticket.created, ticket.status_changed and message.created points at a receiver
  in this process that checks each signature. Mail goes to Django's dummy backend.
- One API key per simulated integration (--keys, default 60), each request taking the next:
  the default throttle (API_THROTTLE_RATE 1200/min a key) stays on, and the per-key rate the
  run reached is printed against it.

wrk (bench/load/mix.lua: the mix is described there; 80% reads, 20% writes with Idempotency-Key)
drives a short warm-up (10 clients, not reported but checked), then phase 1 (--clients,
--duration) and phase 2, the peak (--peak-clients, --peak-duration). wrk's clients send their
next request as soon as the last is answered (a closed loop, no think time), so both phases keep
every gunicorn worker busy: throughput is the capacity, and latency grows with the clients
(Little's law), mostly as the wait for a free worker. For each phase: requests, throughput,
latency p50/p90/p99/max as wrk measured it, every non-2xx by status and error code, socket errors
and timeouts, the server-side time per endpoint from the access log, load average before and
after, and the CPU seconds of gunicorn, PostgreSQL, Celery, wrk and everything else on the
machine (other sessions). wrk (4.1) never abandons a request: an answer that comes later than
--timeout is counted as a timeout and left out of the latency figures, so the default is
gunicorn's own worker timeout, 60 s, and the latency figures cover every answer. An answer
status above 399 is a "non-2xx" error; answers still in flight when a phase ends are not counted
by wrk (the checks account for them from the access log).

After the run, once gunicorn has answered what was still queued and the worker has delivered the
webhooks: the database is checked against the answers the access log records and wrk saw
(tickets and messages created, an Idempotency-Key record per POST and none left claimed, a first
message and SLA clocks on every new ticket, every webhook delivered once with a good signature),
and the logs of gunicorn (worker timeouts, kills, errors), the worker and PostgreSQL (errors other
than the unique violations the app settles, deadlocks) are searched. Then each filter of the
ticket list is timed alone (the access log has no query strings), and a table for bench/README.md
ends the output.

Usage: .venv/bin/python bench/load.py [--clients 50 --duration 300 --peak-clients 120 --peak-duration 60]
       [--tickets 20000] [--workers N] [--keys 60] [--timeout 60] [--database-url URL] [--keep-logs]
       [--redis-url redis://127.0.0.1:6379/14] [--port 8012] [--hook-port 8013] [--pg-port 5435]
Needs wrk (apt-get install wrk), Redis on 127.0.0.1:6379 and, without --database-url, root and
Debian's postgresql-common (pg_createcluster). Exits non-zero when a phase had an error, measured
no request, or a check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from _services import PG_VERSION, drop_cluster, loadavg, percentile, private_cluster, start, stop  # bench/ is on the path

import _common  # bench/ is on the path when a benchmark runs
import _postgres

ROOT = _postgres.ROOT
BIN = Path(sys.executable).parent
LUA = Path(__file__).resolve().parent / "load" / "mix.lua"
KB = Path(__file__).resolve().parent / "kb_search"
# Defaults of --pg-port, --redis-url, --port and --hook-port (main() sets these from them).
PG_CLUSTER, PG_PORT = "load", 5435
REDIS_URL = "redis://127.0.0.1:6379/14"
WEB_PORT, HOOK_PORT = 8012, 8013
HOOK_SECRET = secrets.token_hex(16)
TICK = os.sysconf("SC_CLK_TCK")


# --- the services ---------------------------------------------------------------------------


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def server_env(url: str, logs: Path, workers: int | None) -> dict[str, str]:
    """The production settings of docs/deploy.md, on this machine."""
    env = {
        **os.environ,
        **_postgres.bench_env(url),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECRET_KEY": secrets.token_urlsafe(45),
        "SECURE_SSL_REDIRECT": "false",  # no TLS proxy in front of this gunicorn
        "DATABASE_CONN_MAX_AGE": "60",
        "CACHE_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",  # one access line per request: the 5xx check and the per-endpoint times
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "HELPDESK_VAR_DIR": str(logs),
        "GUNICORN_BIND": f"127.0.0.1:{WEB_PORT}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    return env


def wait_for_web(process: subprocess.Popen) -> None:
    for _ in range(150):
        if process.poll() is not None:
            sys.exit("gunicorn exited at start; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=2)
            conn.request("GET", "/healthz?only=database", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not answer /healthz in 30 s")


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint: checks the signature, counts each delivery once."""

    seen: set[str] = set()
    bad = 0
    posts = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        timestamp = self.headers.get("X-Helpdesk-Timestamp", "")
        expected = hmac.new(HOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(self.headers.get("X-Helpdesk-Signature", ""), f"sha256={expected}")
        with Receiver.lock:
            Receiver.posts += 1
            if good:
                Receiver.seen.add(self.headers.get("X-Helpdesk-Delivery", ""))
            else:
                Receiver.bad += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


# --- data ------------------------------------------------------------------------------------


def seed(url: str, env: dict[str, str], tickets: int, keys: int) -> dict[str, Any]:
    """Migrate, seed, make the keys and the webhook endpoint; returns what the Lua script draws from."""
    started = time.perf_counter()
    _postgres.fresh_database(url, env)
    subprocess.run([str(BIN / "python"), "manage.py", "seed_demo", "--tickets", str(tickets)], cwd=ROOT,
                   env={**env, "LOG_LEVEL": "WARNING"}, check=True, capture_output=True)
    os.environ.update({**{k: v for k, v in env.items() if k != "LOG_LEVEL"}, "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import kb_search

    from helpdesk.api_keys import create_api_key
    from helpdesk.models import Agent, Customer, Team, WebhookEndpoint
    from helpdesk.webhooks import forget_endpoints
    from tickets.models import Ticket
    from tickets.services import close_solved_tickets

    kb_search.load(kb_search.labelled()[0])
    # The demo leaves tickets solved weeks ago that beat's first auto-close sweep would close by
    # the thousand in the middle of the run, a webhook each: close them now, as the sweep every
    # 10 minutes of a live system would have.
    closed = close_solved_tickets()
    plain = [create_api_key(name=f"load-{n:02d}", scope="write")[1] for n in range(1, keys + 1)]
    WebhookEndpoint.objects.create(
        name="load receiver", url=f"http://127.0.0.1:{HOOK_PORT}/hook", secret=HOOK_SECRET,
        events=["ticket.created", "ticket.status_changed", "message.created"],
    )
    forget_endpoints()  # the seeding above cached "no endpoints" for 30 s
    running = [Ticket.Status.NEW, Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.ON_HOLD]
    ref = "T{:08d}".format
    data = {
        "keys": plain,
        "all": [ref(pk) for pk in Ticket.objects.values_list("pk", flat=True)],
        # Messages go to running tickets only: a closed ticket takes none (409), and a solved one
        # may be closed by beat's auto-close sweep during the run.
        "open": [ref(pk) for pk in Ticket.objects.filter(status__in=running).values_list("pk", flat=True)],
        "customers": list(Customer.objects.order_by("?").values_list("pk", flat=True)[:5000]),
        "teams": list(Team.objects.values_list("pk", flat=True)),
        "agent_ids": list(Agent.objects.values_list("pk", flat=True)),
        "agents": list(Agent.objects.values_list("user__username", flat=True)),
        "queries": [quote(q["query"]) for q in json.loads((KB / "queries.json").read_text(encoding="utf-8"))],
        "updated_after": (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_word": quote("退款"),
    }
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    print(f"database: migrated and seeded in {time.perf_counter() - started:.0f} s: {len(data['all']):,} tickets "
          f"({len(data['open']):,} running), {Customer.objects.count():,} customers, {len(data['teams'])} teams, "
          f"{len(data['agents'])} agents, {keys} API keys; {closed:,} old solved tickets closed first")
    connections.close_all()
    return data


def lua_table(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={lua_table(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ",".join(lua_table(v) for v in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)  # ASCII only here: keys, references, %-encoded queries
    return str(value)


# --- measuring -------------------------------------------------------------------------------


def processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of it and of its children it has reaped)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid (1), ..., utime (11), stime (12), cutime (13), cstime (14).
        found[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK)
    return found


def tree_cpu(roots: list[int], table: dict[int, tuple[int, float]]) -> float:
    children = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    total, todo = 0.0, [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children[pid])
    return total


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # minus idle and iowait


class Phase:
    def __init__(self, name: str, clients: int, seconds: int) -> None:
        self.name, self.clients, self.seconds = name, clients, seconds
        self.summary: dict[str, int] = {}
        self.latency: dict[str, float] = {}
        self.responses: Counter[str] = Counter()
        self.cpu: dict[str, float] = {}
        self.load = ("", "")
        self.window = (datetime.now(UTC), datetime.now(UTC))
        self.text = ""

    @property
    def errors(self) -> int:
        s = self.summary
        return s["connect"] + s["read"] + s["write"] + s["timeout"] + s["status"]

    @property
    def rate(self) -> float:
        return self.summary["requests"] / (self.summary["duration_us"] / 1e6)


def run_phase(phase: Phase, data_file: Path, groups: dict[str, list[int]], threads: int, timeout: int) -> None:
    args = ["wrk", f"-t{min(threads, phase.clients)}", f"-c{phase.clients}", f"-d{phase.seconds}s",
            f"--timeout={timeout}s", "--latency", "-s", str(LUA), f"http://127.0.0.1:{WEB_PORT}", "--", str(data_file), phase.name]
    before_load, before_table, before_busy = loadavg(), processes(), machine_busy()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = datetime.now(UTC)
    with tempfile.TemporaryFile("w+") as out:
        wrk = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, code, usage = os.wait4(wrk.pid, 0)
        wrk.returncode = os.waitstatus_to_exitcode(code)
        out.seek(0)
        phase.text = out.read()
    phase.window = (started, datetime.now(UTC))
    after_table, after_busy, self_after = processes(), machine_busy(), resource.getrusage(resource.RUSAGE_SELF)
    phase.load = (before_load, loadavg())
    if wrk.returncode != 0:
        sys.exit(f"wrk failed ({wrk.returncode}):\n{phase.text}")
    for line in phase.text.splitlines():
        if line.startswith("LOAD summary") or line.startswith("LOAD latency_us"):
            target = phase.summary if "summary" in line else phase.latency
            for pair in line.split()[2:]:
                name, value = pair.split("=")
                target[name] = int(float(value))
        elif line.startswith("LOAD responses"):
            _, _, status, kind, count = line.split()
            phase.responses[f"{status} {kind}"] = int(count)
    for name, roots in groups.items():
        phase.cpu[name] = tree_cpu(roots, after_table) - tree_cpu(roots, before_table)
    phase.cpu["wrk"] = usage.ru_utime + usage.ru_stime
    own = (self_after.ru_utime + self_after.ru_stime) - (self_before.ru_utime + self_before.ru_stime)
    phase.cpu["bench (webhook receiver)"] = own
    phase.cpu["everything else (other sessions)"] = max(0.0, (after_busy - before_busy) - sum(phase.cpu.values()))


ENDPOINTS = [
    (re.compile(r"^/api/v1/tickets/T\d+/messages/?$"), "/api/v1/tickets/{ref}/messages/"),
    (re.compile(r"^/api/v1/tickets/T\d+/?$"), "/api/v1/tickets/{ref}/"),
]


def endpoint(method: str, path: str) -> str:
    for pattern, name in ENDPOINTS:
        if pattern.match(path):
            path = name
            break
    return f"{method} {path}"


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def access_by_phase(rows: list[dict[str, Any]], phases: list[Phase]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {phase.name: [] for phase in phases}
    for row in rows:
        if row.get("logger") != "helpdesk.access":
            continue
        at = datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        for phase in phases:
            if phase.window[0] <= at <= phase.window[1] + timedelta(seconds=1):
                out[phase.name].append(row)
                break
    return out


# --- reporting -------------------------------------------------------------------------------


def report_phase(phase: Phase, access: list[dict[str, Any]], keys: int, budget: str) -> None:
    s, lat = phase.summary, phase.latency
    seconds = s["duration_us"] / 1e6
    print(f"\n== {phase.name}: {phase.clients} clients for {phase.seconds} s ==")
    print(f"requests {s['requests']:,} in {seconds:.1f} s: {phase.rate:.1f} req/s")
    print(f"latency (wrk, ms): p50 {lat['p50'] / 1000:.1f}  p90 {lat['p90'] / 1000:.1f}  p99 {lat['p99'] / 1000:.1f}  "
          f"p99.9 {lat['p999'] / 1000:.1f}  max {lat['max'] / 1000:.1f}  mean {lat['mean'] / 1000:.1f}")
    print(f"errors: non-2xx/3xx {s['status']}, socket connect {s['connect']}, read {s['read']}, write {s['write']}, "
          f"timeouts {s['timeout']}  => {'NONE' if phase.errors == 0 else phase.errors}")
    print("responses by status and kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(phase.responses.items())))
    print(f"per API key: {s['requests'] / keys / seconds * 60:.0f} requests/min on average over {keys} keys "
          f"(budget {budget})")
    print(f"clients / throughput = {phase.clients / phase.rate:.2f} s, the mean latency a closed loop without think "
          f"time must show (Little's law; wrk's mean {lat['mean'] / 1e6:.2f} s): the rest of a request's time is its "
          f"wait for a free gunicorn worker")
    print(f"load average before {phase.load[0]}, after {phase.load[1]}")
    busy = sum(phase.cpu.values())
    print(f"CPU seconds ({seconds:.0f} s x {os.cpu_count()} cores = {seconds * (os.cpu_count() or 1):.0f} available; "
          f"busy {busy:.0f}): " + ", ".join(f"{k} {v:.0f}" for k, v in phase.cpu.items()))
    statuses = Counter(row["status"] for row in access)
    print(f"access log: {len(access):,} requests, by status: " + ", ".join(f"{k} {n:,}" for k, n in sorted(statuses.items())))
    by_endpoint: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in access:
        by_endpoint[endpoint(row["method"], row["path"])].append(row)
    print(f"  {'endpoint (server time, ms)':<42} {'count':>7} {'share':>6} {'non-2xx':>7} {'p50':>7} {'p99':>7} {'max':>7}")
    for name, rows in sorted(by_endpoint.items(), key=lambda item: -len(item[1])):
        times = [row["duration_ms"] for row in rows]
        bad = sum(1 for row in rows if not 200 <= row["status"] < 300)
        print(f"  {name:<42} {len(rows):>7,} {len(rows) / len(access):>6.1%} {bad:>7} {statistics.median(times):>7.1f} "
              f"{percentile(times, 99):>7.1f} {max(times):>7.1f}")


def list_variants(data: dict[str, Any], runs: int) -> None:
    """The ticket-list filters of the mix one at a time, after the run, with no other load from
    us: the access log names the path only (query strings may hold personal data), so this is
    where a slow filter shows."""
    variants = {
        "(no filter)": "",
        "status=open": "?status=open",
        "status=new&status=open&team=": f"?status=new&status=open&team={data['teams'][0]}",
        "team=&priority=urgent": f"?team={data['teams'][0]}&priority=urgent",
        "channel=wechat&status=pending": "?channel=wechat&status=pending",
        "assignee=": f"?assignee={data['agent_ids'][0]}",
        "customer=": f"?customer={data['customers'][0]}",
        "category=refund&page_size=20": "?category=refund&page_size=20",
        "ordering=updated_at&updated_after=&page_size=100":
            f"?ordering=updated_at&updated_after={data['updated_after']}&page_size=100",
        "q=退款 (subject words)": f"?q={data['subject_word']}",
        "sla_breached=true&status=open": "?sla_breached=true&status=open",
    }
    headers = {"Authorization": f"Bearer {data['keys'][0]}", "Host": "127.0.0.1"}
    print(f"\n== GET /api/v1/tickets/ by filter, {runs} requests each one after another, after the run (ms) ==")
    for name, query in variants.items():
        times = []
        for _ in range(runs + 2):
            conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=60)
            started = time.perf_counter()
            conn.request("GET", "/api/v1/tickets/" + query, headers=headers)
            response = conn.getresponse()
            response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                print(f"  {name}: HTTP {response.status}")
                break
        times = times[2:]  # warm-up
        if times:
            print(f"  {name:<52} p50 {statistics.median(times):7.1f}  p99 {percentile(times, 99):7.1f}  max {max(times):7.1f}")


def log_problems(path: Path, pattern: str) -> list[str]:
    if not path.exists():
        return []
    return [line[:400] for line in path.read_text(errors="replace").splitlines() if re.search(pattern, line)]


def wait_until_idle(log: Path, quiet: float = 5.0, limit: float = 300.0) -> float:
    """Wait until gunicorn has answered what is still queued (wrk stops with requests in flight,
    and requests sent but not yet accepted sit in the listen backlog); returns the seconds waited."""
    started = time.monotonic()
    size, since = -1, time.monotonic()
    while time.monotonic() - started < limit:
        now_size = log.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def checks(phases: list[Phase], logs: Path, pg_log: Path | None, access: list[dict[str, Any]]) -> list[str]:
    """The database against the answers the server gave (its access log) and the answers wrk saw,
    and the logs; returns the failures."""
    from django.db.models import Count, Q

    from helpdesk.models import IdempotentRequest, WebhookDelivery
    from tickets.models import Message, SlaClock, Ticket

    failures = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
        if not ok:
            failures.append(name)

    # The worker delivers webhooks after the run too: wait until none is waiting.
    started, deadline = time.monotonic(), time.monotonic() + 300
    while time.monotonic() < deadline:
        if not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists():
            break
        time.sleep(2)
    print(f"  [info] webhook deliveries drained {time.monotonic() - started:.0f} s after the last request")

    answered = Counter((endpoint(row["method"], row["path"]), row["status"]) for row in access)
    seen: Counter[str] = Counter()
    for phase in phases:
        seen.update(phase.responses)
    ticket_posts = answered[("POST /api/v1/tickets/", 201)]
    ingest_new = answered[("POST /api/v1/messages/ingest", 201)]
    ingest_joined = answered[("POST /api/v1/messages/ingest", 200)]
    message_posts = answered[("POST /api/v1/tickets/{ref}/messages/", 201)]
    in_flight = sum(answered.values()) - sum(seen.values())
    clients = sum(phase.clients for phase in phases)
    check("wrk saw every answer the server logged, but those in flight when a phase ended",
          0 <= in_flight <= clients,
          f"{sum(answered.values()):,} logged, {sum(seen.values()):,} seen by wrk: {in_flight} in flight "
          f"(at most {clients}, the clients of all phases)")
    api_created = Ticket.objects.filter(external_id__startswith="load-").count()
    chat_created = Ticket.objects.filter(conversation_id__startswith="load-").count()
    load_tickets = Ticket.objects.filter(Q(external_id__startswith="load-") | Q(conversation_id__startswith="load-"))
    messages = Message.objects.filter(channel_message_id__startswith="load-").count()
    expected_messages = message_posts + ingest_new + ingest_joined + ticket_posts
    check("tickets created = 201 answers to POST /tickets/", api_created == ticket_posts,
          f"{api_created:,} in the database, {ticket_posts:,} answers ({seen['201 ticket']:,} seen by wrk)")
    check("tickets opened by chat ingest = its 201 answers", chat_created == ingest_new,
          f"{chat_created:,} in the database, {ingest_new:,} answers ({seen['201 ingest']:,} seen by wrk)")
    check("messages stored = messages answered 2xx", messages == expected_messages,
          f"{messages:,} in the database, {expected_messages:,} answers (messages 201, ingest 2xx, tickets 201)")
    empty = load_tickets.annotate(n=Count("messages")).filter(n=0).count()
    check("every new ticket has its first message", empty == 0, f"{empty} without")
    clockless = load_tickets.exclude(pk__in=SlaClock.objects.values("ticket_id")).count()
    check("every new ticket has SLA clocks", clockless == 0, f"{clockless} without")
    posts = sum(n for (name, status), n in answered.items() if name.startswith("POST") and status < 500 and status != 429)
    claims = IdempotentRequest.objects.filter(key__startswith="load-")
    stored, dangling = claims.exclude(status_code=None).count(), claims.filter(status_code=None).count()
    check("an Idempotency-Key record per POST answered, none left claimed", stored == posts and dangling == 0,
          f"{stored:,} stored, {dangling} claimed without an answer, {posts:,} POSTs answered")
    deliveries = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")))
    delivered = deliveries.get(WebhookDelivery.Status.DELIVERED, 0)
    by_event = dict(WebhookDelivery.objects.values_list("event").annotate(n=Count("id")))
    check("webhooks: a ticket.created per new ticket, a message.created per message at least (automatic replies too)",
          by_event.get("ticket.created", 0) == api_created + chat_created and by_event.get("message.created", 0) >= messages,
          f"by event {by_event}")
    check("webhooks: all delivered, each received once with a good signature",
          set(deliveries) <= {WebhookDelivery.Status.DELIVERED} and len(Receiver.seen) == delivered and Receiver.bad == 0,
          f"deliveries by status {deliveries}; the receiver got {Receiver.posts:,} POSTs, {len(Receiver.seen):,} distinct, "
          f"{Receiver.bad} bad signatures")
    server_errors = Counter(row["status"] for row in access if row["status"] >= 500)
    check("no 5xx in the access log", not server_errors, f"{dict(server_errors) or 0}")
    others = {f"{name} {status}": n for (name, status), n in answered.items() if not 200 <= status < 300}
    check("no other non-2xx in the access log", not others, f"{others or 0}")
    web = logs / "gunicorn.log"
    problems = log_problems(web, r"WORKER TIMEOUT|SIGKILL|Traceback|\"level\": \"(ERROR|CRITICAL)\"")
    check("gunicorn log: no worker timeout, kill, traceback or error", not problems, f"{len(problems)} lines")
    for line in problems[:5]:
        print("      " + line)
    booted = len(log_problems(web, r"Booting worker"))
    print(f"  [info] gunicorn workers booted in the whole run: {booted} (the first ones and max_requests restarts)")
    worker = log_problems(logs / "celery-worker.log", r"Traceback|\"level\": \"(ERROR|CRITICAL)\"|\] ERROR|\] CRITICAL")
    check("celery worker log: no error", not worker, f"{len(worker)} lines")
    for line in worker[:5]:
        print("      " + line)
    if pg_log is not None:
        # A unique violation is how the app settles races it expects (two first messages of one
        # chat, one new customer named by two requests, a repeated Idempotency-Key): it catches
        # the IntegrityError and answers 2xx, which the access log checks above confirm.
        lines = log_problems(pg_log, r"ERROR|FATAL|PANIC|deadlock")
        races = Counter(m.group(1) for line in lines if (m := re.search(r'violates unique constraint "([^"]+)"', line)))
        print(f"  [info] PostgreSQL unique violations (races the app settles): {dict(races) or 0}")
        pg = [line for line in lines if "violates unique constraint" not in line]
        check("PostgreSQL log: no other error, no fatal, no deadlock", not pg, f"{len(pg)} lines")
        for line in pg[:5]:
            print("      " + line)
    return failures


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    global PG_PORT, REDIS_URL, WEB_PORT, HOOK_PORT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="phase 1: concurrent clients (wrk connections)")
    parser.add_argument("--duration", type=int, default=300, help="phase 1: seconds")
    parser.add_argument("--peak-clients", type=int, default=120, help="phase 2: concurrent clients (0 skips it)")
    parser.add_argument("--peak-duration", type=int, default=60, help="phase 2: seconds")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of warm-up at 10 clients, not counted")
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets seed_demo makes")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: config/gunicorn.py's, 2 x cores + 1)")
    parser.add_argument("--keys", type=int, default=60, help="API keys, one per simulated integration")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=60,
                        help="wrk: a request older than this counts as a timeout error (and is left out of the latency "
                             "figures); default gunicorn's worker timeout")
    parser.add_argument("--variant-runs", type=int, default=20, help="requests per list filter timed after the run")
    parser.add_argument("--database-url", help="use this database (dropped and made anew) instead of a private cluster")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs folder")
    parser.add_argument("--pg-port", type=int, default=PG_PORT, help=f"the private cluster's port (default {PG_PORT})")
    _common.add_target_options(parser, redis=REDIS_URL, ports={"port": WEB_PORT, "hook_port": HOOK_PORT})
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    PG_PORT, REDIS_URL, WEB_PORT, HOOK_PORT = args.pg_port, args.redis_url, args.port, args.hook_port

    logs = Path(tempfile.mkdtemp(prefix="helpdesk-load-"))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    # --no-optional-locks: read only, git status must not even refresh the index.
    dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores (nproc), load average {loadavg()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
          f"code {head}{' + uncommitted changes' if dirty else ''}; logs in {logs}")
    url = args.database_url or private_cluster(PG_CLUSTER, PG_PORT, "bench_load")
    pg_log = None if args.database_url else Path(f"/var/log/postgresql/postgresql-{PG_VERSION}-{PG_CLUSTER}.log")
    env = server_env(url, logs, args.workers)
    web = worker = beat = None
    hooks = ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Receiver)
    failures: list[str] = []
    serving = False
    try:
        flush_redis()
        data = seed(url, env, args.tickets, args.keys)
        data_file = logs / "data.lua"
        data_file.write_text("return " + lua_table(data) + "\n")
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        serving = True
        worker = start([str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
                        "-n", "load@%h"], env, logs / "celery-worker.log")
        beat = start([str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO",
                      "--schedule", str(logs / "celerybeat-schedule")], env, logs / "celery-beat.log")
        web = start([str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"], env, logs / "gunicorn.log")
        wait_for_web(web)
        time.sleep(1)
        workers = sum(1 for ppid, _ in processes().values() if ppid == web.pid)
        postmaster = None
        if pg_log is not None:
            pid_file = Path(f"/var/lib/postgresql/{PG_VERSION}/{PG_CLUSTER}/postmaster.pid")
            postmaster = int(pid_file.read_text().split()[0])
        groups = {"gunicorn": [web.pid], "postgres": [postmaster] if postmaster else [],
                  "celery worker + beat": [worker.pid, beat.pid]}
        print(f"gunicorn: {workers} sync workers (config/gunicorn.py{', --workers' if args.workers else ' default'}), "
              f"Celery: 1 worker (concurrency 2) + beat on Redis {REDIS_URL}, PostgreSQL {url.split('@')[1]}, "
              f"wrk: {args.threads} threads, timeout {args.timeout} s")

        phases = []
        warmup = Phase("warmup", 10, args.warmup)
        if args.warmup:
            run_phase(warmup, data_file, groups, args.threads, args.timeout)
            print(f"warm-up: {warmup.rate:.0f} req/s, errors {warmup.errors}", flush=True)
        plan = [("phase1", args.clients, args.duration), ("phase2", args.peak_clients, args.peak_duration)]
        for name, clients, seconds in plan:
            if clients and seconds:
                phase = Phase(name, clients, seconds)
                run_phase(phase, data_file, groups, args.threads, args.timeout)
                _common.require(int(phase.summary.get("requests", 0)), 1, f"requests in {name}")
                phases.append(phase)
                print(f"{name} done: {phase.rate:.0f} req/s, p99 {phase.latency['p99'] / 1000:.0f} ms, errors {phase.errors}",
                      flush=True)

        waited = wait_until_idle(logs / "gunicorn.log")
        print(f"gunicorn idle {waited:.0f} s after the last phase (answering what was queued)")
        access_rows = read_json_lines(logs / "gunicorn.log")  # before list_variants adds its own
        access = access_by_phase(access_rows, phases)
        for phase in phases:
            report_phase(phase, access[phase.name], args.keys, env.get("API_THROTTLE_RATE", "1200/min"))
            print("\nwrk's own output:\n" + "\n".join(l for l in phase.text.splitlines() if not l.startswith("LOAD ")))
        print("\n== checks after the run ==")
        all_access = [row for row in access_rows if row.get("logger") == "helpdesk.access"]
        # The warm-up's writes are in the database too: its responses count with the phases'.
        failures = checks(phases + ([warmup] if args.warmup else []), logs, pg_log, all_access)
        for phase in phases + ([warmup] if args.warmup else []):
            if phase.errors:
                failures.append(f"{phase.name}: {phase.errors} errors")
        print("\n| phase | clients | seconds | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors | timeouts | load avg before / after |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for phase in phases:
            s, lat = phase.summary, phase.latency
            print(f"| {phase.name} | {phase.clients} | {phase.seconds} | {s['requests']:,} | {phase.rate:.1f} | "
                  f"{lat['p50'] / 1000:.0f} | {lat['p90'] / 1000:.0f} | {lat['p99'] / 1000:.0f} | {lat['max'] / 1000:.0f} | "
                  f"{s['status']} | {s['connect'] + s['read'] + s['write']} | {s['timeout']} | {phase.load[0]} / {phase.load[1]} |")
        list_variants(data, args.variant_runs)
        print(f"\nload average at the end {loadavg()}")
    finally:
        for process, name in ((web, "gunicorn"), (beat, "celery beat"), (worker, "celery worker")):
            stop(process, name)
        if serving:
            hooks.shutdown()
        hooks.server_close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if args.database_url:
            drop_database(url)
        else:
            drop_cluster(PG_CLUSTER)
        flush_redis()
        if not args.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)
        print("cleaned up: gunicorn, worker and beat stopped, " + ("database dropped" if args.database_url else
              f"cluster {PG_CLUSTER} dropped") + f", Redis {REDIS_URL} flushed" + ("" if args.keep_logs else ", logs removed"))
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
