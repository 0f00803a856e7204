"""PostgreSQL restarted under load: every answer during the outage is a 503 in the API's error
shape (never a 500, never a reset connection), and requests succeed again by themselves.

It makes a PostgreSQL cluster of its own (`pg_createcluster 15 faults -p 5434`, trust auth on
loopback), migrates a database there, makes an API key, starts gunicorn with config/gunicorn.py
and kept connections (DATABASE_CONN_MAX_AGE=600, health-checked before reuse), runs client
threads that mix GET /api/v1/tickets/ and POST /api/v1/tickets/, restarts that cluster in the
middle (`pg_ctlcluster 15 faults restart`: a fast shutdown, every session ended), and prints the
answers by status before, during and after, and how long until requests succeed again. At the
end it stops gunicorn and stops and drops the cluster. Never the shared cluster: the name and
port are its own.

Usage: .venv/bin/python bench/pg_restart.py [--clients 8] [--before 10] [--after 15] [--workers 4]
    [--pg-port 5434] [--port 8013]
Exits non-zero on a FAIL, or when no request was answered before the restart. Needs the Debian PostgreSQL tools (pg_createcluster, pg_ctlcluster, pg_dropcluster), run as root
or as postgres.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Defaults of --pg-port and --port; main() sets these from them.
VERSION, CLUSTER, PG_PORT = "15", "faults", 5434
URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/helpdesk_pgrestart"
PORT = 8013


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    method: str
    status: int  # 0: no HTTP answer at all (reset, refused, timed out)
    shape_ok: bool  # for a non-2xx: the 503 error shape with Retry-After
    error: str = ""


def env(var_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": URL,
        "DATABASE_CONN_MAX_AGE": "600",  # kept connections: what a restart breaks
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "100000000/min",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        # No webhook endpoint and no short SLA target: nothing is published. Were anything
        # published, it would land in this run's own folder, not a shared broker.
        "HELPDESK_VAR_DIR": var_dir,
        "CELERY_BROKER_URL": "filesystem://",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
    }


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def create_cluster() -> None:
    existing = run("pg_lsclusters", "--no-header").stdout.split()
    if CLUSTER in existing:
        raise SystemExit(f"a cluster {VERSION}/{CLUSTER} exists already: pg_dropcluster {VERSION} {CLUSTER} --stop")
    run("pg_createcluster", VERSION, CLUSTER, "-p", str(PG_PORT), "--start", "--",
        "--auth-local=trust", "--auth-host=trust")


def drop_cluster() -> None:
    subprocess.run(["pg_dropcluster", VERSION, CLUSTER, "--stop"], capture_output=True)


def prepare(environment: dict[str, str]) -> str:
    """Database, schema and an API key; returns the key."""
    import psycopg

    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute('CREATE DATABASE "helpdesk_pgrestart"')
    manage = [str(BIN / "python"), "manage.py"]
    run(*manage, "migrate", "--no-input", "-v0", cwd=ROOT, env=environment)
    return run(*manage, "create_api_key", "pg-restart", "--scope", "write", cwd=ROOT, env=environment).stdout.split()[-1]


def start_gunicorn(environment: dict[str, str], workers: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT, env={**environment, "GUNICORN_WORKERS": str(workers)}, stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    for _ in range(150):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            connection.request("GET", "/api/schema/")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def is_unavailable_shape(status: int, headers: dict[str, str], body: bytes) -> bool:
    if status != 503 or not headers.get("retry-after", "").isdigit():
        return False
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return error.get("code") == "database_unavailable" and bool(error.get("message")) and error.get("fields") == {}


def client(key: str, stop: threading.Event, answers: list[Answer], seed: int) -> None:
    """One client: keep-alive, alternating list and create, a new connection after any failure."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection = None
    n = 0
    while not stop.is_set():
        n += 1
        method = "POST" if n % 2 else "GET"
        if method == "POST":
            body = json.dumps({
                "subject": "物流查询", "channel": "email", "priority": "normal",
                "customer": {"name": "压测客户", "phone": f"139{rng.randrange(10**8):08d}"},
                "message": {"body": "我的快递到哪了？"},
            }).encode()
            path = "/api/v1/tickets/"
        else:
            body, path = None, "/api/v1/tickets/?page_size=20"
        started = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            status = response.status
            shape = 200 <= status < 300 or is_unavailable_shape(
                status, {k.lower(): v for k, v in response.getheaders()}, content
            )
            answers.append(Answer(started, time.monotonic(), method, status, shape))
            if response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as error:
            answers.append(Answer(started, time.monotonic(), method, 0, False, type(error).__name__))
            if connection is not None:
                connection.close()
            connection = None
            time.sleep(0.05)


def watch_postgres(stop: threading.Event, seen: dict[str, float]) -> None:
    """When PostgreSQL stops taking connections and when it takes them again (its own probe)."""
    import psycopg

    while not stop.is_set():
        try:
            psycopg.connect(URL, connect_timeout=1).close()
            if "down" in seen and "up" not in seen:
                seen["up"] = time.monotonic()
        except psycopg.Error:
            seen.setdefault("down", time.monotonic())
        time.sleep(0.02)


def report(answers: list[Answer], restart_started: float, restart_ended: float, pg: dict[str, float], log: Path) -> bool:
    failures = [a for a in answers if not 200 <= a.status < 300 and a.ended >= restart_started]
    last_failure = max((a.ended for a in failures), default=restart_started)
    first_failure = min((a.ended for a in failures), default=restart_started)

    def phase(answer: Answer) -> str:
        if answer.ended < restart_started:
            return "before"
        return "during" if answer.started <= last_failure else "after"

    counts: dict[str, Counter] = {"before": Counter(), "during": Counter(), "after": Counter()}
    for answer in answers:
        counts[phase(answer)][answer.status or "no answer"] += 1
    first_success = min(
        (a.ended for a in answers if 200 <= a.status < 300 and a.started > last_failure), default=None
    )
    print(f"restart command (pg_ctlcluster {VERSION} {CLUSTER} restart): {restart_ended - restart_started:.2f} s; "
          f"PostgreSQL refused connections from {pg['down'] - restart_started:+.2f} s to {pg['up'] - restart_started:+.2f} s")
    for name in ("before", "during", "after"):
        shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts[name].items(), key=lambda i: str(i[0])))
        print(f"  {name:<7} {sum(counts[name].values()):5d} requests   {shown or '-'}")
    wrong = [a for a in failures if not a.shape_ok]
    print(f"non-2xx after the restart began: {len(failures)}, of which 503 with the error shape and Retry-After: "
          f"{len(failures) - len(wrong)}; 500s: {sum(a.status == 500 for a in answers)}; "
          f"no answer (reset, refused, timeout): {sum(a.status == 0 for a in answers)}")
    if failures:
        print(f"first failure {first_failure - restart_started:+.2f} s, last failure {last_failure - restart_started:+.2f} s "
              "after the restart began")
        slowest = max(a.ended - a.started for a in failures)
        print(f"slowest failed request: {slowest * 1000:.0f} ms")
    if first_success is not None:
        print(f"requests succeed again {first_success - restart_started:.2f} s after the restart began, "
              f"{first_success - pg['up']:.2f} s after PostgreSQL took connections again")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    by_logger = Counter(line["logger"] for line in lines if line["level"] in {"ERROR", "CRITICAL"})
    print(f"server ERROR lines by logger: {dict(by_logger)}")
    return not wrong and first_success is not None and not any(a.status == 500 for a in answers)


def main() -> None:
    global PG_PORT, URL, PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--before", type=float, default=10, help="seconds of load before the restart")
    parser.add_argument("--after", type=float, default=15, help="seconds of load after it")
    parser.add_argument("--pg-port", type=int, default=PG_PORT, help=f"the private cluster's port (default {PG_PORT})")
    _common.add_target_options(parser, ports={"port": PORT})
    args = parser.parse_args()
    if args.clients < 1 or args.before <= 0 or args.after <= 0:
        raise SystemExit("--clients must be >= 1, --before and --after > 0")
    PG_PORT, PORT = args.pg_port, args.port
    URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/helpdesk_pgrestart"
    with _common.machine():
        run_restart(args)


def run_restart(args: argparse.Namespace) -> None:
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (Debian's postgresql-common)")

    var_dir = tempfile.mkdtemp(prefix="pg-restart-")
    log = Path(var_dir) / "gunicorn.log"
    environment = env(var_dir)
    create_cluster()
    server = None
    try:
        key = prepare(environment)
        server = start_gunicorn(environment, args.workers, log)
        answers: list[Answer] = []
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(key, stop, answers, n)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.before)
        pg: dict[str, float] = {}
        watching = threading.Event()
        watcher = threading.Thread(target=watch_postgres, args=(watching, pg))
        restart_started = time.monotonic()
        watcher.start()
        run("pg_ctlcluster", VERSION, CLUSTER, "restart")
        restart_ended = time.monotonic()
        time.sleep(args.after)
        stop.set()
        watching.set()
        for thread in [*threads, watcher]:
            thread.join()
        print(f"gunicorn {args.workers} sync workers, kept connections; {args.clients} clients (GET list / POST create); "
              f"{args.before:.0f} s, restart, {args.after:.0f} s")
        _common.require(sum(1 for a in answers if a.ended < restart_started), 1, "answers before the restart")
        ok = report(answers, restart_started, restart_ended, pg, log)
        print("PASS" if ok else "FAIL")
        if not ok:
            raise SystemExit("FAILED: see above")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        drop_cluster()
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
