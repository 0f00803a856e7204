"""How long `manage.py seed_demo --tickets N` takes on a fresh database; prints the figures.

Usage: .venv/bin/python bench/seed_demo.py [--tickets 100000] [--backends sqlite,postgres]
    [--database-url postgres://postgres@127.0.0.1:5432/helpdesk_bench]
The PostgreSQL database (default $BENCH_POSTGRES_URL or helpdesk_bench) is dropped and made anew.
Exits non-zero when a run leaves another number of tickets than asked, or the second run adds any.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def fresh_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def count_tickets(env: dict[str, str]) -> int:
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", "from tickets.models import Ticket; print(Ticket.objects.count())"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    return int(out.split()[-1])


def run(backend: str, tickets: int, url: str) -> None:
    env = {**os.environ, "DEBUG": "true"}
    with tempfile.TemporaryDirectory() as var:
        env["HELPDESK_VAR_DIR"] = var
        if backend == "postgres":
            fresh_postgres(url)
            env["DATABASE_URL"] = url
        else:
            env["DATABASE_URL"] = f"sqlite:///{var}/bench.sqlite3"
        manage(env, "migrate", "--no-input")
        started = time.monotonic()
        manage(env, "seed_demo", "--tickets", str(tickets))
        elapsed = time.monotonic() - started
        first = count_tickets(env)
        again_started = time.monotonic()
        manage(env, "seed_demo", "--tickets", str(tickets))  # the idempotent second run
        again = time.monotonic() - again_started
        second = count_tickets(env)
    print(f"{backend:<9} {tickets:>8} tickets  {elapsed:7.1f} s  {tickets / elapsed:8.0f} tickets/s  second run {again:5.1f} s")
    _common.require(first, tickets, f"tickets seeded on {backend}")
    if second != first:
        sys.exit(f"FAILED: the second run on {backend} left {second} tickets, the first {first}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    _common.add_target_options(parser, database="postgres://postgres@127.0.0.1:5432/helpdesk_bench")
    args = parser.parse_args()
    if args.tickets < 1:
        sys.exit("--tickets must be >= 1")
    with _common.machine():
        for backend in args.backends.split(","):
            run(backend, args.tickets, args.database_url)


if __name__ == "__main__":
    main()
