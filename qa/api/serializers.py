"""Shapes of the QA API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from helpdesk.api.fields import DayField, TextField
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


class CriterionScoreSerializer(serializers.Serializer):
    criterion = serializers.CharField(source="criterion.code", read_only=True)
    title = serializers.CharField(source="criterion.title", read_only=True)
    points = serializers.IntegerField(read_only=True, allow_null=True)
    max_points = serializers.IntegerField(source="criterion.max_points", read_only=True)
    comment = serializers.CharField(read_only=True)


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    ticket = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()
    inspector = serializers.CharField(source="inspector.username", read_only=True, allow_null=True, default=None)
    status = serializers.CharField(read_only=True)
    score = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True, allow_null=True)
    strengths = serializers.CharField(read_only=True)
    shortcomings = serializers.CharField(read_only=True)
    coaching = serializers.CharField(read_only=True)
    assigned_at = serializers.DateTimeField(read_only=True)
    submitted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    acknowledged_at = serializers.DateTimeField(read_only=True, allow_null=True)
    scores = CriterionScoreSerializer(many=True, read_only=True)
    dispute = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_dispute(self, review) -> dict | None:
        dispute = getattr(review, "dispute", None) if hasattr(review, "dispute") else None
        if dispute is None:
            return None
        return {
            "status": dispute.status, "reason": dispute.reason, "opened_at": dispute.opened_at,
            "original_score": None if dispute.original_score is None else str(dispute.original_score), "resolution": dispute.resolution, "resolved_at": dispute.resolved_at,
        }

    def get_ticket(self, review) -> str:
        return Ticket(pk=review.ticket_id).reference

    def get_agent(self, review) -> dict:
        return {"id": review.agent_id, "display_name": review.agent.display_name}


class ScoreInputSerializer(serializers.Serializer):
    criterion = serializers.SlugField(max_length=50)
    points = serializers.IntegerField(min_value=0, max_value=10, allow_null=True, help_text="null: N/A")
    comment = TextField(required=False, default="", allow_blank=True, max_length=2000)


class SubmitReviewSerializer(serializers.Serializer):
    scores = ScoreInputSerializer(many=True, max_length=200)
    strengths = TextField(required=False, default="", allow_blank=True, max_length=4000)
    shortcomings = TextField(required=False, default="", allow_blank=True, max_length=4000)
    coaching = TextField(required=False, default="", allow_blank=True, max_length=4000)


class DisputeInputSerializer(serializers.Serializer):
    reason = TextField(max_length=4000)


class ResolveDisputeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["uphold", "amend"])
    comment = TextField(max_length=4000)
    scores = ScoreInputSerializer(many=True, required=False, max_length=200)


class ReportQuerySerializer(serializers.Serializer):
    to = DayField(help_text="Last day, inclusive.")
    by = serializers.ChoiceField(choices=["agent", "team", "criterion"], default="agent")
    team = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def validate(self, data: dict) -> dict:
        if data["to"] < data["from"]:
            raise serializers.ValidationError({"to": ["Must not be before from."]})
        if (data["to"] - data["from"]).days > 366:
            raise serializers.ValidationError({"to": ["At most a year at a time."]})
        return data


# "from" is a Python keyword, so it cannot be declared in the class body.
ReportQuerySerializer._declared_fields = {
    "from": DayField(help_text="First day, YYYY-MM-DD (TIME_ZONE)."), **ReportQuerySerializer._declared_fields
}
