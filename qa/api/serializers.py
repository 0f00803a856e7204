"""Shapes of the QA API."""

from __future__ import annotations

from rest_framework import serializers

from tickets.models import Ticket

from ..models import SampleRun


class SampleRunSerializer(serializers.Serializer):
    date = serializers.DateField(source="day", read_only=True)
    scope = serializers.SerializerMethodField()
    seed = serializers.IntegerField(read_only=True)
    rate = serializers.DecimalField(max_digits=4, decimal_places=3, read_only=True)
    population = serializers.IntegerField(read_only=True)
    trigger = serializers.CharField(read_only=True)
    tickets = serializers.SerializerMethodField()

    def get_scope(self, run: SampleRun) -> str:
        """The team's name, or "all" for the every-team scope."""
        return run.scope.team.name if run.scope.team_id else "all"

    def get_tickets(self, run: SampleRun) -> list[str]:
        return sorted(Ticket(pk=review.ticket_id).reference for review in run.reviews.all())
