"""QA sampling benchmark on PostgreSQL; prints its figures.

Fills a fresh database with N conversations solved on one day, spread over 500 agents, then
draws that day's 5% sample in a child process and reports its time and the child's peak memory
(ru_maxrss: the whole Python process, Django included).

Usage: .venv/bin/python bench/qa_sample.py [--conversations 1000000] [--database-url URL]
Needs PostgreSQL at --database-url (default $BENCH_POSTGRES_URL or
postgres://postgres@127.0.0.1:5432/helpdesk_qabench, dropped and made anew). Exits non-zero when
the day's population or sample is empty.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_qabench"
URL = DEFAULT_URL  # set by main() from --database-url


def settings_env(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "DEBUG": "false", "SECRET_KEY": "bench-" + "k" * 50, "DJANGO_SETTINGS_MODULE": "config.settings"}


ENV = settings_env(URL)
DAY = "2026-11-20"


def setup(conversations: int) -> None:
    import psycopg

    name = URL.rsplit("/", 1)[1]
    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env={**os.environ, **ENV}, check=True)
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
               SELECT '!', false, 'agent' || g, '', '', '', true, true, now() FROM generate_series(1, 500) g"""
        )
        conn.execute(
            """INSERT INTO helpdesk_agent (user_id, display_name, max_concurrent, presence, presence_changed_at)
               SELECT id, username, 5, 'online', now() FROM auth_user WHERE username LIKE 'agent%'"""
        )
        conn.execute(
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
               SELECT '!', false, 'inspector' || g, '', '', '', true, true, now() FROM generate_series(1, 20) g"""
        )
        conn.execute(
            """INSERT INTO auth_user_groups (user_id, group_id)
               SELECT u.id, g.id FROM auth_user u, auth_group g WHERE u.username LIKE 'inspector%' AND g.name = 'QA Inspector'"""
        )
        conn.execute(
            """INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
               SELECT '', 'c' || g, '', '', 'standard', 'zh-hans', now(), now() FROM generate_series(1, 1000) g"""
        )
        conn.execute(
            f"""INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, priority, status,
                    assignee_id, created_at, updated_at, first_response_at, solved_at, requester_wait_seconds, agent_work_seconds,
                    public_replies, reopens)
                SELECT '会话 ' || g, '', '', c.ids[1 + g % 1000], 'web_chat', 'normal', 'solved',
                    -- agents' volumes differ: a few busy, many quiet
                    a.ids[1 + floor(500 * power(random(), 2))::int % 500],
                    ts, ts, ts + interval '1 minute', ts + interval '10 minutes', 0, 0, 1, 0
                FROM generate_series(1, {conversations}) g,
                    LATERAL (SELECT timestamptz '{DAY} 00:00:00+08' + (g % 86000) * interval '1 second' AS ts) t,
                    (SELECT array_agg(id) AS ids FROM helpdesk_customer) c,
                    (SELECT array_agg(id ORDER BY id) AS ids FROM helpdesk_agent) a"""
        )
        conn.execute("ANALYZE")


DRAW = """
import os, resource, sys, time
sys.path.insert(0, os.getcwd())
import django
django.setup()
from datetime import date
from qa.models import SampleScope
from qa.services import draw_daily_sample
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
run, drawn = draw_daily_sample(day=date.fromisoformat(sys.argv[1]), scope=SampleScope.objects.get(team=None), seed=2026)
took = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{run.population} {run.reviews.count()} {took:.2f} {before / 1024:.0f} {peak / 1024:.0f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=1_000_000)
    _common.add_target_options(parser, database=DEFAULT_URL)
    args = parser.parse_args()
    if args.conversations < 1:
        sys.exit("--conversations must be >= 1")
    global URL, ENV
    URL, ENV = args.database_url, settings_env(args.database_url)
    with _common.machine():
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    setup(args.conversations)
    print(f"filled {args.conversations:,} conversations in {time.perf_counter() - started:.0f} s")
    out = subprocess.run(
        [sys.executable, "-c", DRAW, DAY], cwd=ROOT, env={**os.environ, **ENV}, check=True, capture_output=True, text=True
    ).stdout.split()
    population, drawn, took, before, peak = out
    _common.require(int(population), 1, "conversations in the day's population")
    _common.require(int(drawn), 1, "conversations drawn")
    print(
        f"draw: {int(population):,} conversations, {int(drawn):,} drawn and assigned in {float(took):.2f} s "
        f"(target <= 10 s); peak RSS {peak} MB, {before} MB before the draw (target <= 300 MB)"
    )


if __name__ == "__main__":
    main()
