"""Shapes of the organisation API: customers, teams, agents."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from helpdesk.models import Agent, Customer, Team
from helpdesk.pii import shown_contact

from .fields import InstantField, TextField


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "external_id", "name", "phone", "email", "tier", "first_seen_at", "created_at"]
        read_only_fields = ["id", "first_seen_at", "created_at"]

    def to_representation(self, customer: Customer) -> dict[str, Any]:
        data = super().to_representation(customer)
        data.update(shown_contact(customer, self.context["user"]))
        return data


class CustomerWriteSerializer(serializers.ModelSerializer):
    external_id = TextField(max_length=200, required=False, allow_blank=True)

    class Meta:
        model = Customer
        fields = ["external_id", "name", "phone", "email", "tier"]

    def validate_external_id(self, value: str) -> str:
        taken = Customer.objects.filter(external_id=value).exclude(pk=getattr(self.instance, "pk", None))
        if value and taken.exists():
            raise serializers.ValidationError("Another customer has this external id.")
        return value


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "description", "created_at"]


class AgentSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    teams = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    skills = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = Agent
        fields = ["id", "username", "display_name", "teams", "skills", "max_concurrent", "presence", "presence_changed_at"]
        read_only_fields = fields


class PresenceSerializer(serializers.Serializer):
    presence = serializers.ChoiceField(choices=Agent.Presence.choices)


class WhoAmISerializer(serializers.Serializer):
    username = TextField()
    key = TextField(allow_null=True)
    scope = TextField(allow_null=True)


@extend_schema_field({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:00"})
class ClockField(serializers.TimeField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", **kwargs)


class WorkingHoursSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(read_only=True, help_text="0 is Monday.")
    # Wall-clock times in the calendar's own zone ("09:00"), not RFC 3339 times, which need an offset.
    start = ClockField(read_only=True)
    end = ClockField(read_only=True, help_text="00:00 is midnight at the end of the day.")


class CalendarSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    time_zone = serializers.CharField(read_only=True)
    holiday_region = serializers.CharField(read_only=True)
    hours = WorkingHoursSerializer(many=True, read_only=True)


class DueQuerySerializer(serializers.Serializer):
    start = InstantField(help_text="ISO 8601 with an offset or Z.")
    seconds = serializers.IntegerField(min_value=0, max_value=366 * 86400, help_text="Business seconds to add (at most a year).")


class DueSerializer(serializers.Serializer):
    due = serializers.DateTimeField()
