"""How long `manage.py seed_demo --tickets N` takes on a fresh database; prints the figures.

Usage: .venv/bin/python bench/seed_demo.py [--tickets 100000] [--backends sqlite,postgres]
PostgreSQL is reached at BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/helpdesk_bench);
the database is dropped and made anew.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def run(backend: str, tickets: int) -> None:
    env = {**os.environ, "DEBUG": "true"}
    with tempfile.TemporaryDirectory() as var:
        env["HELPDESK_VAR_DIR"] = var
        if backend == "postgres":
            url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/helpdesk_bench")
            fresh_postgres(url)
            env["DATABASE_URL"] = url
        else:
            env["DATABASE_URL"] = f"sqlite:///{var}/bench.sqlite3"
        manage(env, "migrate", "--no-input")
        started = time.monotonic()
        manage(env, "seed_demo", "--tickets", str(tickets))
        elapsed = time.monotonic() - started
        manage(env, "seed_demo", "--tickets", str(tickets))  # the idempotent second run
        again = time.monotonic() - started - elapsed
    print(f"{backend:<9} {tickets:>8} tickets  {elapsed:7.1f} s  {tickets / elapsed:8.0f} tickets/s  second run {again:5.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args.tickets)


if __name__ == "__main__":
    main()
