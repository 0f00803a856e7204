"""manage.py import_kb PATH: move an existing FAQ (Markdown files with YAML front matter) in."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from knowledge.imports import import_folder


class Command(BaseCommand):
    help = (
        "Create or update knowledge-base articles by slug from a folder of Markdown files with YAML front matter "
        "(title, slug, category, tags, audience, status, language, owner); see knowledge/imports.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="A folder (searched recursively for *.md) or one .md file.")
        parser.add_argument("--author", help="Username the changes are made as (needed to publish).")
        parser.add_argument("--reviewer", help="Username of the reviewer who publishes files marked published.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen and change nothing.")

    def handle(self, *args, path: Path, author: str | None, reviewer: str | None, dry_run: bool, **options) -> None:
        if not path.exists():
            raise CommandError(_("No such file or folder: %s") % path)
        try:
            report = import_folder(path, author=_user(author), reviewer=_user(reviewer), dry_run=dry_run)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        for name, reason in report.skipped:
            self.stderr.write(f"{name}: {reason}")
        summary = _("%(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(skipped)d skipped.") % {
            "created": len(report.created), "updated": len(report.updated),
            "unchanged": len(report.unchanged), "skipped": len(report.skipped),
        }
        self.stdout.write((_("Dry run, nothing saved: ") if dry_run else "") + summary)
        if report.skipped:
            raise CommandError(_("%d file(s) skipped, for the reasons above.") % len(report.skipped))


def _user(username: str | None) -> AbstractBaseUser | None:
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(_("No user %s.") % username)
    return user
