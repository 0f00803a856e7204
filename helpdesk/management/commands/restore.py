from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from helpdesk import backups


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup`, then check every table's row count and checksum "
        "against its manifest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The backup file (its manifest FILE.json beside it).")
        parser.add_argument(
            "--database-url",
            help=(
                "Restore into this database instead of the configured one (created if it does not exist on "
                "PostgreSQL), e.g. postgres://user@host:5432/helpdesk_check or sqlite:////tmp/check.sqlite3."
            ),
        )
        parser.add_argument("--yes", action="store_true", help="Replace the data of a database that has tables.")

    def handle(self, *args, file: Path, database_url: str | None, yes: bool, **options) -> None:
        try:
            restored = backups.restore_backup(path=file, database_url=database_url, replace=yes)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            _("Restored %(path)s into %(db)s: %(tables)d tables and %(rows)d rows, all matching the manifest.")
            % {"path": file, "db": restored.target, "tables": restored.tables, "rows": restored.rows}
        )
        if restored.untouched:
            self.stderr.write(
                _("Tables the backup does not have were left as they were: %(tables)s")
                % {"tables": ", ".join(restored.untouched)}
            )
