from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from helpdesk import backups


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump on PostgreSQL, SQLite's backup API on SQLite) into BACKUP_DIR, "
        "with a manifest of row counts and checksums per table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="Write the backup to this file instead (never overwritten).")

    def handle(self, *args, output: Path | None, **options) -> None:
        try:
            backup = backups.create_backup(output=output)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            _("Backed up to %(path)s (%(size)s; %(tables)d tables, %(rows)d rows).")
            % {
                "path": backup.path,
                "size": filesizeformat(backup.size),
                "tables": len(backup.tables),
                "rows": backup.rows,
            }
        )
        self.stdout.write(_("Manifest: %(path)s") % {"path": backup.manifest_path})
