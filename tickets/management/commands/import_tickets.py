"""manage.py import_tickets FILE: ticket history from JSON Lines or CSV, streamed (constant memory)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from helpdesk.textfiles import encoding_named
from tickets.imports import FORMATS, import_tickets

SHOWN_ERRORS = 100


def file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


class Command(BaseCommand):
    help = (
        "Import tickets from a JSON Lines file (one ticket per line) or a CSV file (one row per message); "
        "see docs/api.md for the formats. A file with a bad line imports nothing unless --partial."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The .jsonl or .csv file, or - for standard input.")
        parser.add_argument("--format", choices=FORMATS, help="Default: csv for a .csv file, else jsonl.")
        parser.add_argument("--encoding", default="auto", help="utf-8, gb18030 or auto (CSV: GB18030 unless UTF-8).")
        parser.add_argument(
            "--partial", action="store_true", help="Import the good lines of a file with bad ones (and report those)."
        )

    def handle(self, *args, file: Path, format: str | None, encoding: str, partial: bool, **options) -> None:
        try:
            encoding = encoding_named(encoding)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        fmt = format or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
        with tempfile.TemporaryDirectory() as spool:
            if str(file) == "-":
                # Standard input can be read once; the import reads twice (check, then write).
                path = Path(spool) / "stdin"
                with path.open("wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out)
            elif not file.is_file():
                raise CommandError(_("No such file: %s") % file)
            else:
                path = file
            with tqdm(unit="l", disable=None) as bar:
                def progress(phase: str, done: int) -> None:
                    bar.set_description(phase, refresh=False)
                    bar.n = done
                    bar.refresh()

                report = import_tickets(lambda: file_lines(path), fmt=fmt, encoding=encoding, partial=partial, progress=progress)
        for line, field, error in report.errors[:SHOWN_ERRORS]:
            self.stderr.write(f"line {line}: {field + ': ' if field else ''}{error}")
        if report.failed > SHOWN_ERRORS:
            self.stderr.write(_("… and more errors, %(n)d failed lines in all") % {"n": report.failed})
        self.stdout.write(
            _("Imported: %(created)d created, %(updated)d updated, %(failed)d failed.") % {
                "created": report.created, "updated": report.updated, "failed": report.failed,
            }
        )
        if not report.written:
            raise CommandError(
                _("%(n)d line(s) failed; nothing was imported (fix them, or import the others with --partial).")
                % {"n": report.failed}
            )
        if report.failed:
            raise CommandError(_("%(n)d line(s) failed; the other lines were imported.") % {"n": report.failed})
