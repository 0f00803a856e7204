"""Draw a day's QA sample now, or redraw a past day: manage.py draw_qa_sample --date 2026-11-22."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from helpdesk.errors import DomainError
from qa.models import SampleRun, SampleScope
from qa.services import draw_daily_sample


class Command(BaseCommand):
    help = "Draw (or with --redraw, draw again) the QA sample of a day for one scope or every active scope."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="The day, YYYY-MM-DD (in TIME_ZONE).")
        parser.add_argument("--scope", help="A team's name or id, or 'all' for the every-team scope; default: every active scope.")
        parser.add_argument("--seed", type=int, help="Reproduce a sample: the same seed and population give the same draw.")
        parser.add_argument("--redraw", action="store_true", help="Replace an existing run none of whose reviews is submitted.")
        parser.add_argument("--by", help="Username recorded as who drew it.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"])
        except ValueError:
            raise CommandError(f"--date: “{options['date']}” is not a date like 2026-11-22.") from None
        actor = None
        if options["by"]:
            actor = get_user_model().objects.filter(username=options["by"]).first()
            if actor is None:
                raise CommandError(f"--by: no user is called “{options['by']}”.")
        scopes = SampleScope.objects.filter(is_active=True).select_related("team", "scorecard")
        if options["scope"]:
            name = options["scope"]
            if name == "all":
                named = Q(team__isnull=True)
            else:
                named = Q(team__name=name) | (Q(team__pk=int(name)) if name.isdigit() else Q(pk__in=[]))
            scopes = SampleScope.objects.filter(named)
            if not scopes.exists():
                raise CommandError(f"--scope: no sampling scope for “{name}”.")
        for scope in scopes:
            try:
                run, drawn = draw_daily_sample(
                    day=day, scope=scope, seed=options["seed"], trigger=SampleRun.Trigger.COMMAND, actor=actor,
                    redraw=options["redraw"],
                )
            except DomainError as error:
                raise CommandError(f"{scope}: {error.message}") from None
            verb = "drew" if drawn else "already drawn:"
            self.stdout.write(
                f"{scope} {day}: {verb} {run.reviews.count()} of {run.population} conversations "
                f"(rate {run.rate:.0%}, seed {run.seed})"
            )
