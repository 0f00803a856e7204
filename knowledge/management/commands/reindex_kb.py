from __future__ import annotations

from django.core.management.base import BaseCommand

from knowledge import search


class Command(BaseCommand):
    help = "Recompute every article's search words and vector (after a change to how text is segmented)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"Reindexed {search.reindex()} articles.")
