"""Soak: customer messages at 2.4 times the normal peak for 10 minutes, with a worker restart and a
PostgreSQL restart in the middle. Nothing a customer sent may be lost.

The production set-up of docs/deploy.md on one machine:
- PostgreSQL 15: a private cluster `soak` (port --pg-port, 5436) made for the run and dropped after.
  Migrated and given the demo's organisation (`seed_demo --tickets 0`: teams, agents online,
  routing rules, the shipped SLA policies and automatic replies). The chat policy's calendar is
  set to `24x7` so that its 15 s first-response target runs, breaches and escalates now, whatever
  the hour: the run checks escalations, not only storage.
- Redis db --redis-db (12) as broker and cache; gunicorn (config/gunicorn.py), one Celery worker and
  one beat, each its own process, as production runs them.
- The load generator is its own process (multiprocessing): an open loop that sends each message
  at its scheduled instant from a pool of threads with kept connections, so a slow server makes
  requests late (reported) instead of making fewer of them. Each message is
  `POST /api/v1/messages/ingest` with a unique message id and an Idempotency-Key; half open a new
  web chat, half join one of the recent chats. A message answered 503 or 429 is sent again after
  its Retry-After, as a chat platform's push retries; a message with no HTTP answer (reset,
  timeout) is sent again after 1 s. --keys API keys share the load, with the shipped throttle on.
- At 1/3 of the run the worker's process group is killed (SIGKILL) and a new worker started 1 s
  later (what systemd's Restart= does); at 1/2 the PostgreSQL cluster is restarted (a fast
  shutdown ends every session).

Then, once the worker is idle, the checks (each printed with its count; any failure exits 1):
- every message answered 2xx, at first or on a retry, is stored exactly once (by its message id);
- no message is stored twice, whatever it was answered;
- every answer that was not 2xx was a 503 or 429 with Retry-After; answers with no HTTP status at all are counted;
- every message the run sent was finally accepted (the retries ran out for none);
- every new chat has its first-response clock; every clock due before the end is breached and
  escalated to level 1 exactly once, and none was breached before it was due; the escalation
  lag (escalation - due) is printed as p50/p99/max.
Also printed: the offered and achieved rate, lateness of the generator, answers by status, retries,
load average before and after.

Usage: .venv/bin/python bench/soak.py [--peak 10] [--factor 2.4] [--duration 600] [--keys 4]
       [--port 18300] [--pg-port 5436] [--redis-db 12] [--workers N] [--keep]
Needs root and Debian's postgresql-common (pg_createcluster) and Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _services import PG_VERSION, drop_cluster, loadavg, percentile, private_cluster, start, stop  # bench/ is on the path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_CLUSTER = "soak"


def server_env(url: str, redis_url: str, var: Path, port: int, workers: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATABASE_CONN_MAX_AGE": "60",  # kept connections: what the PostgreSQL restart breaks
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(45),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "CACHE_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "HELPDESK_VAR_DIR": str(var),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    return env


def worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return start([str(BIN / "celery"), "-A", "config", "worker", "--concurrency", "2", "--loglevel", "INFO"], env, log)


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def prepare(env: dict[str, str], keys: int) -> list[str]:
    """Schema, the demo organisation, chat on a 24x7 calendar, the API keys; returns the keys."""
    import psycopg

    base = env["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bench_soak"')
        conn.execute('CREATE DATABASE "bench_soak"')
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "seed_demo", "--tickets", "0")
    manage(env, "shell", "-c", (
        "from helpdesk.models import BusinessCalendar; from tickets.models import SlaPolicy; "
        "SlaPolicy.objects.filter(channels__contains=['web_chat']).update(calendar=BusinessCalendar.objects.get(slug='24x7'))"
    ))
    return [manage(env, "create_api_key", f"soak-{n}", "--scope", "write").split()[-1] for n in range(keys)]


# --- the load generator (its own process) -----------------------------------------------------


def generate(port: int, keys: list[str], rate: float, duration: float, run: str, out: str) -> None:
    """Open loop: message n is due at start + n / rate; answers are written as JSON lines to `out`."""
    rng = random.Random(run)
    due: queue.Queue = queue.Queue()
    results: queue.Queue = queue.Queue()
    start_at = time.monotonic() + 1.0
    total = int(rate * duration)
    recent: list[str] = []

    for n in range(total):
        if recent and rng.random() < 0.5:
            conversation = rng.choice(recent[-200:])
        else:
            conversation = f"{run}-c{n}"
            recent.append(conversation)
        due.put((start_at + n / rate, n, conversation, keys[n % len(keys)]))

    def send(connection: http.client.HTTPConnection | None, key: str, body: bytes, message_id: str):
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/api/v1/messages/ingest", body=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": message_id,
            "Host": "127.0.0.1",
        })
        response = connection.getresponse()
        response.read()
        return connection, response.status, response.getheader("Retry-After", "")

    def client() -> None:
        connection = None
        while True:
            try:
                at, n, conversation, key = due.get_nowait()
            except queue.Empty:
                return
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            late = max(0.0, -wait)
            message_id = f"{run}-m{n}"
            body = json.dumps({
                "channel": "web_chat", "conversation_id": conversation,
                "customer": {"name": "压测客户", "external_id": conversation},
                "message": {"external_id": message_id, "body": f"你好，我的订单还没到 #{n}"},
            }).encode()
            attempts = []
            while len(attempts) < 20:
                try:
                    connection, status, retry_after = send(connection, key, body, message_id)
                except (OSError, http.client.HTTPException) as error:
                    connection = None
                    attempts.append({"status": 0, "error": type(error).__name__, "at": time.monotonic() - start_at})
                    time.sleep(1.0)
                    continue
                attempts.append({"status": status, "retry_after": retry_after, "at": time.monotonic() - start_at})
                if status < 300:
                    break
                if status in (429, 503) and retry_after.isdigit():
                    time.sleep(min(int(retry_after), 10))
                    continue
                time.sleep(1.0)  # an answer the contract does not allow: counted, and sent again
            results.put({"n": n, "id": message_id, "late": late, "attempts": attempts})

    threads = [threading.Thread(target=client, daemon=True) for _ in range(max(16, int(rate * 2)))]
    for thread in threads:
        thread.start()
    with open(out, "w") as file:
        done = 0
        while done < total:
            try:
                file.write(json.dumps(results.get(timeout=120)) + "\n")
            except queue.Empty:
                break  # clients stuck for two minutes: what was answered is reported
            done += 1


# --- the checks ----------------------------------------------------------------------------------


def wait_idle(env: dict[str, str], quiet: float, limit: float) -> None:
    """Until no clock is due or claimed within `quiet` seconds (the worker has caught up)."""
    deadline = time.monotonic() + limit
    script = (
        "from django.utils import timezone; from datetime import timedelta; from tickets.models import SlaClock; "
        "print(SlaClock.objects.filter(next_check_at__lte=timezone.now() - timedelta(seconds=5)).count())"
    )
    while time.monotonic() < deadline:
        if manage(env, "shell", "-c", script).strip().splitlines()[-1] == "0":
            return
        time.sleep(quiet)


CHECK_SCRIPT = r"""
import json, sys
from collections import Counter
from django.db.models import Count, F
from django.utils import timezone
from tickets.models import Escalation, Message, SlaClock, Ticket
prefix = sys.argv[-1]
counts = dict(Message.objects.filter(channel_message_id__startswith=prefix + "-m").values_list("channel_message_id")
              .annotate(n=Count("id")).values_list("channel_message_id", "n"))
now = timezone.now()
tickets = Ticket.objects.filter(conversation_id__startswith=prefix + "-c")
without_clock = tickets.exclude(sla_clocks__metric="first_response").count()
clocks = SlaClock.objects.filter(ticket__in=tickets, metric="first_response")
overdue = clocks.filter(due_at__lt=now, fulfilled_at__isnull=True, stopped_at__isnull=True, paused_at__isnull=True)
not_escalated = overdue.exclude(escalations__level=1).count()
not_breached = overdue.filter(breached_at__isnull=True).count()
levels = Counter(Escalation.objects.filter(clock__in=clocks, level=1).values_list("clock_id", flat=True))
lag = [(e.created_at - e.clock.due_at).total_seconds()
       for e in Escalation.objects.filter(clock__in=clocks, level=1).select_related("clock").only("created_at", "clock__due_at")]
print(json.dumps({"counts": counts, "tickets": tickets.count(), "without_clock": without_clock, "overdue": overdue.count(),
                  "not_escalated": not_escalated, "not_breached": not_breached,
                  "breached_early": clocks.filter(breached_at__lt=F("due_at")).count(),
                  "escalated_twice": sum(1 for n in levels.values() if n > 1), "lag": lag}))
"""


def checks(env: dict[str, str], run: str, results: list[dict[str, Any]], sent: int) -> list[str]:
    script = Path(env["HELPDESK_VAR_DIR"]) / "check.py"
    script.write_text(CHECK_SCRIPT)
    db = json.loads(subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c",
                                    f"import sys; sys.argv.append({run!r}); exec(open({str(script)!r}).read())"],
                                   cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    stored = db["counts"]
    answers = Counter()
    bad_shape = Counter()
    accepted, refused_for_good, retried = set(), [], 0
    for row in results:
        for attempt in row["attempts"]:
            answers[attempt["status"]] += 1
            status = attempt["status"]
            if status >= 300 and not (status in (429, 503) and attempt.get("retry_after", "").isdigit()):
                bad_shape[status] += 1
        retried += len(row["attempts"]) > 1
        if row["attempts"] and row["attempts"][-1]["status"] < 300 and row["attempts"][-1]["status"] != 0:
            accepted.add(row["id"])
        else:
            refused_for_good.append(row["id"])
    lost = [m for m in accepted if stored.get(m, 0) != 1]
    twice = [m for m, n in stored.items() if n > 1]
    late = [row["late"] for row in results]
    lag = db["lag"]
    print(f"messages: scheduled {sent}, answered {len(results)}, accepted {len(accepted)}, retried {retried}, "
          f"never accepted {len(refused_for_good)}")
    print("answers by status: " + ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(answers.items())))
    print(f"generator lateness: p50 {percentile(late, 50):.3f} s, p99 {percentile(late, 99):.3f} s, max {max(late, default=0):.3f} s")
    print(f"stored: accepted and stored once {len(accepted) - len(lost)}, accepted but missing or doubled {len(lost)}, "
          f"stored twice {len(twice)}")
    print(f"tickets {db['tickets']}, without a first-response clock {db['without_clock']}; clocks overdue {db['overdue']}, "
          f"not breached {db['not_breached']}, not escalated {db['not_escalated']}, escalated twice "
          f"{db['escalated_twice']}, breached before due {db['breached_early']}")
    print(f"escalation lag (escalated - due): n {len(lag)}, p50 {percentile(lag, 50):.2f} s, p99 {percentile(lag, 99):.2f} s, "
          f"max {max(lag, default=float('nan')):.2f} s")
    failures = []
    if len(results) < sent or not results:
        failures.append(f"only {len(results)} of {sent} messages were answered")
    if lost:
        failures.append(f"{len(lost)} accepted messages not stored exactly once, e.g. {lost[:3]}")
    if twice:
        failures.append(f"{len(twice)} messages stored twice, e.g. {twice[:3]}")
    if bad_shape:
        failures.append(f"answers outside the contract (not 2xx, 429 or 503 with Retry-After): {dict(bad_shape)}")
    if refused_for_good:
        failures.append(f"{len(refused_for_good)} messages never accepted after 20 attempts")
    for name in ("without_clock", "not_breached", "not_escalated", "escalated_twice", "breached_early"):
        if db[name]:
            failures.append(f"{name.replace('_', ' ')}: {db[name]}")
    if not lag:
        failures.append("no escalation measured")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peak", type=float, default=10.0, help="the normal peak, messages a second")
    parser.add_argument("--factor", type=float, default=2.4)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--pg-port", type=int, default=5436)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (config/gunicorn.py's default)")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root for pg_createcluster")
    import redis

    # A SIGTERM (timeout, Ctrl-C from a wrapper) still stops the servers and drops the cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    rate = args.peak * args.factor
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    var = Path(tempfile.mkdtemp(prefix="soak-"))
    processes: dict[str, subprocess.Popen | None] = {"web": None, "worker": None, "beat": None}
    print(f"load average before: {loadavg()}")
    print(f"offered: {rate:g} messages a second ({args.factor:g} x a peak of {args.peak:g}) for {args.duration:g} s")
    try:
        url = private_cluster(PG_CLUSTER, args.pg_port, "bench_soak")
        env = server_env(url, redis_url, var, args.port, args.workers)
        keys = prepare(env, args.keys)
        processes["web"] = start([str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"], env, var / "web.log")
        processes["worker"] = worker(env, var / "worker.log")
        processes["beat"] = start([str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO",
                                   "--schedule", str(var / "beat-schedule")], env, var / "beat.log")
        for _ in range(150):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                connection.request("GET", "/healthz?only=database", headers={"Host": "127.0.0.1"})
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            sys.exit("gunicorn did not answer /healthz in 30 s")
        run = "soak" + secrets.token_hex(3)
        out = var / "answers.jsonl"
        generator = multiprocessing.get_context("spawn").Process(
            target=generate, args=(args.port, keys, rate, args.duration, run, str(out)))
        started = time.monotonic()
        generator.start()
        time.sleep(args.duration / 3)
        print(f"{time.monotonic() - started:6.1f} s: worker killed (SIGKILL to its process group)")
        os.killpg(processes["worker"].pid, signal.SIGKILL)
        processes["worker"].wait()
        time.sleep(1)
        processes["worker"] = worker(env, var / "worker.log")
        time.sleep(max(0.0, started + args.duration / 2 - time.monotonic()))
        print(f"{time.monotonic() - started:6.1f} s: PostgreSQL restart")
        subprocess.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "restart"], check=True)
        print(f"{time.monotonic() - started:6.1f} s: PostgreSQL up")
        generator.join(timeout=args.duration + 600)
        if generator.is_alive():
            generator.terminate()
        print(f"{time.monotonic() - started:6.1f} s: load done; waiting for the worker to catch up")
        time.sleep(20)  # the last chats' 15 s target
        wait_idle(env, quiet=2.0, limit=300.0)
        results = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        failures = checks(env, run, results, int(rate * args.duration))
        web_errors = [line for line in (var / "web.log").read_text(errors="replace").splitlines()
                      if '"status": 5' in line and '"status": 503' not in line][:5]
        if web_errors:
            failures.append(f"5xx other than 503 in the web log: {web_errors}")
    finally:
        for name in ("web", "beat", "worker"):
            stop(processes[name])
        drop_cluster(PG_CLUSTER)
        redis.Redis.from_url(redis_url).flushdb()
        if args.keep:
            print(f"logs kept in {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)
    print(f"load average after: {loadavg()}")
    if failures:
        print("FAILED:\n- " + "\n- ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
