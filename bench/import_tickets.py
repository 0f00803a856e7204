"""How long `manage.py import_tickets` takes for N tickets on a fresh PostgreSQL; prints the figures.

Usage: .venv/bin/python bench/import_tickets.py [--tickets 100000] [--database-url URL]
The database (default $BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/helpdesk_importbench)
is dropped and made anew. Exits non-zero when an import fails or leaves another number of tickets. The file is generated: 3 to 5 messages, 2 status events and a rating per
ticket, 20,000 customers, 10 teams, 50 agents. The import runs twice: the second run updates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs

ROOT = Path(__file__).resolve().parent.parent


def lines(n: int, rng: random.Random):
    start = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    for i in range(n):
        at = start + timedelta(minutes=i)
        customer = rng.randrange(20_000)
        agent = f"old_agent_{rng.randrange(50)}"
        messages = [{"external_id": f"m{i}-0", "author": "customer", "body": "我的订单还没发货，请帮忙查一下。", "sent_at": at.isoformat()}]
        for k in range(1, rng.randint(3, 5)):
            author = "agent" if k % 2 else "customer"
            messages.append({
                "external_id": f"m{i}-{k}", "author": author, "agent": agent if author == "agent" else "",
                "body": "已为您催促仓库，今天发出。" if author == "agent" else "好的谢谢", "sent_at": (at + timedelta(minutes=3 * k)).isoformat(),
            })
        yield json.dumps({
            "external_id": f"old-{i}", "subject": "催发货", "channel": rng.choice(["web_chat", "email", "wechat", "phone"]),
            "category": rng.choice(["delivery", "returns", "refund", "login"]), "priority": rng.choice(["low", "normal", "high"]),
            "customer": {"external_id": f"c-{customer}", "name": f"客户{customer}", "phone": f"135{customer:08d}", "tier": "standard"},
            "team": f"老系统{rng.randrange(10)}组", "assignee": agent, "messages": messages,
            "events": [{"status": "solved", "at": (at + timedelta(hours=1)).isoformat()}, {"status": "closed", "at": (at + timedelta(days=4)).isoformat()}],
            "csat": {"stars": rng.randint(1, 5), "comment": "", "at": (at + timedelta(hours=2)).isoformat()},
        }, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    _common.add_target_options(parser, database="postgres://postgres@127.0.0.1:5432/helpdesk_importbench")
    args = parser.parse_args()
    if args.tickets < 1:
        sys.exit("--tickets must be >= 1")
    with _common.machine():
        run(args.tickets, args.database_url)


def run(tickets: int, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_url": url, "DEBUG": "true", "DATABASE_CONN_MAX_AGE": "600"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
        for line in lines(tickets, random.Random(7)):
            handle.write(line + "\n")
    size = Path(handle.name).stat().st_size / 1e6
    for label in ("first import", "re-import (updates)"):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "manage.py", "import_tickets", handle.name], cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        if done.returncode != 0:
            sys.exit(f"FAILED: {label} exited {done.returncode}: {done.stderr[-2000:]}")
        print(f"{label:<20} {tickets} tickets ({size:.0f} MB)  {elapsed:6.1f} s  {tickets / elapsed:6.0f} tickets/s  {summary}")
        with psycopg.connect(url) as conn:
            imported = conn.execute("SELECT count(*) FROM tickets_ticket").fetchone()[0]
        _common.require(imported, tickets, f"tickets in the database after the {label}")
    os.unlink(handle.name)


if __name__ == "__main__":
    main()
