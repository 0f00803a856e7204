from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.api_keys import create_api_key
from helpdesk.errors import DomainError
from helpdesk.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for an integration (or, with --user, a staff member). Prints the key once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What the key is for, e.g. the chat platform's name.")
        parser.add_argument("--scope", choices=ApiKey.Scope.values, default=ApiKey.Scope.READ)
        parser.add_argument("--user", help="A staff member's username: a personal key that sees what they see.")

    def handle(self, *args, name: str, scope: str, user: str | None, **options) -> None:
        owner = None
        if user:
            owner = User.objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            api_key, plain = create_api_key(name=name, scope=scope, user=owner)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stderr.write(
            f"Created API key {api_key.prefix}… ({api_key.scope}) acting as {api_key.user.username}. "
            "Store it now: it is not shown again."
        )
        self.stdout.write(plain)
