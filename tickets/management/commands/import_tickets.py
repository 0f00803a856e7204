from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tickets.imports import import_tickets


class Command(BaseCommand):
    help = "Import tickets from a JSON Lines file (one ticket per line); see docs/api.md for the format."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The .jsonl file, or - for standard input.")

    def handle(self, *args, file: Path, **options) -> None:
        if str(file) != "-" and not file.is_file():
            raise CommandError(f"No such file: {file}")
        stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")
        with stream, tqdm(desc="lines", unit="l", disable=None) as bar:
            report = import_tickets(stream, progress=bar.update)
        for line, error in report.errors[:100]:
            self.stderr.write(f"line {line}: {error}")
        if report.failed > 100:
            self.stderr.write(f"… and {report.failed - 100} more failed lines")
        self.stdout.write(f"Imported: {report.created} created, {report.updated} updated, {report.failed} failed.")
        if report.failed:
            raise CommandError(f"{report.failed} line(s) failed; the other lines were imported.")
