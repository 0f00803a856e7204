from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from knowledge import demo as knowledge_demo
from tickets import demo


class Command(BaseCommand):
    help = "Load demo data: teams, agents, one login per role, customers and N tickets with conversations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=500, help="Make sure at least this many tickets exist.")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed, for repeatable data.")
        parser.add_argument("--days", type=int, default=90, help="Spread tickets over this many past days.")

    def handle(self, *args, tickets: int, seed: int, days: int, **options) -> None:
        if tickets < 0:
            raise CommandError("--tickets must be zero or more.")
        if days < 1:
            raise CommandError("--days must be at least 1.")
        started = time.monotonic()
        logins = demo.ensure_organisation()
        with tqdm(total=tickets, desc="tickets", unit="t", disable=None) as bar:
            added = demo.seed_tickets(tickets, seed=seed, days=days, progress=bar.update)
        articles, replies = knowledge_demo.ensure_knowledge()
        elapsed = time.monotonic() - started
        self.stdout.write(f"Added {added} tickets, {articles} articles and {replies} canned replies in {elapsed:.1f}s.")
        self.stdout.write("Logins (username / password / role):")
        for login in logins:
            self.stdout.write(f"  {login.username:<10} {login.password:<14} {login.role}")
