"""Time the staff admin's busiest pages on an already seeded database; prints the figures.

Usage: DEBUG=true .venv/bin/python bench/admin_pages.py [--repeat 5] [--database-url URL]
Seed first with `manage.py seed_demo --tickets 100000` (bench/seed_demo.py leaves its
PostgreSQL database, helpdesk_bench, seeded). The database is $DATABASE_URL unless
--database-url names one. Exits non-zero on an empty database or a page that is not a 200.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import _common  # bench/ is on the path when a benchmark runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def measure(client, url: str, repeat: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url, headers={"host": "127.0.0.1"})
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"FAILED: {url} answered {response.status_code}")
    _common.measured(timings, repeat, f"requests to {url}")
    return statistics.median(timings), max(timings), len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="(default $DATABASE_URL)")
    args = parser.parse_args()
    if args.repeat < 1 or not args.database_url:
        sys.exit("--repeat must be >= 1 and a database named (--database-url or $DATABASE_URL)")
    os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    with _common.machine():
        time_pages(args.repeat)


def time_pages(repeat: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from tickets.models import Message, Ticket
    from tickets.queries import visible_to

    tickets, messages = Ticket.objects.count(), Message.objects.count()
    _common.require(tickets, 1, "tickets in the database (seed it first)")
    some = Ticket.objects.order_by("-pk").values_list("pk", flat=True).first()
    print(f"{connection.vendor}: {tickets} tickets, {messages} messages")
    pages = {
        "ticket list": "/admin/tickets/ticket/",
        "list, status=open": "/admin/tickets/ticket/?status__exact=open",
        "list, team+priority": "/admin/tickets/ticket/?team__id__exact=1&priority__exact=urgent",
        "list, sorted by subject": "/admin/tickets/ticket/?o=2",
        "search by reference": f"/admin/tickets/ticket/?q=T{some:08d}",
        "search message text": "/admin/tickets/ticket/?q=%E9%80%80%E6%AC%BE",
    }
    for username in ["admin", "agent"]:
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        mine = visible_to(user).order_by("-pk").values_list("pk", flat=True).first()
        for name, url in [*pages.items(), ("ticket page", f"/admin/tickets/ticket/{mine}/change/")]:
            median, worst, queries = measure(client, url, repeat)
            print(f"  {username:<6} {name:<24} median {median:8.1f} ms  max {worst:8.1f} ms  {queries:3d} queries")


if __name__ == "__main__":
    main()
