"""Time the staff admin's busiest pages on an already seeded database; prints the figures.

Usage: DATABASE_URL=… DEBUG=true .venv/bin/python bench/admin_pages.py [--repeat 5]
Seed first with `manage.py seed_demo --tickets 100000` (bench/seed_demo.py leaves its
PostgreSQL database, helpdesk_bench, seeded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tickets.models import Message, Ticket  # noqa: E402
from tickets.queries import visible_to  # noqa: E402


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    timings = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url, headers={"host": "127.0.0.1"})
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings), max(timings), len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tickets, messages = Ticket.objects.count(), Message.objects.count()
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
            median, worst, queries = measure(client, url, args.repeat)
            print(f"  {username:<6} {name:<24} median {median:8.1f} ms  max {worst:8.1f} ms  {queries:3d} queries")


if __name__ == "__main__":
    main()
