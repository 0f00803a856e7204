"""Shapes of the tickets API. They check input and render output; services do the work."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from helpdesk.api.fields import PrimaryKeyField, id_field
from helpdesk.models import Agent, Channel, Customer, Team
from helpdesk.pii import shown_contact

from ..models import Message, Ticket


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class AgentRefSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Agent
        fields = ["id", "username", "display_name"]


class CustomerBriefSerializer(serializers.ModelSerializer):
    """A customer as the reader may see them: contact details masked without the PII right."""

    class Meta:
        model = Customer
        fields = ["id", "external_id", "name", "tier", "phone", "email"]

    def to_representation(self, customer: Customer) -> dict[str, Any]:
        data = super().to_representation(customer)
        data.update(shown_contact(customer, self.context["user"]))
        return data


class TicketSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    external_id = serializers.CharField(read_only=True, allow_null=True)
    category = serializers.SlugRelatedField(slug_field="code", read_only=True)
    team = TeamRefSerializer(read_only=True)
    assignee = AgentRefSerializer(read_only=True)
    customer = CustomerBriefSerializer(read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    previous_ticket = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "reference", "external_id", "subject", "status", "channel", "category", "priority", "team",
            "assignee", "customer", "tags", "conversation_id", "previous_ticket", "created_at", "updated_at",
            "first_response_at", "last_customer_message_at", "solved_at", "closed_at",
        ]
        read_only_fields = fields

    def to_representation(self, ticket: Ticket) -> dict[str, Any]:
        data = super().to_representation(ticket)
        data["external_id"] = ticket.external_id or None
        return data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_previous_ticket(self, ticket: Ticket) -> str | None:
        return Ticket(pk=ticket.previous_ticket_id).reference if ticket.previous_ticket_id else None


class CustomerInputSerializer(serializers.Serializer):
    """Names a customer: by id, external id, phone or email; made from the rest if new."""

    id = id_field(required=False)
    external_id = serializers.CharField(required=False, max_length=200, default="")
    name = serializers.CharField(required=False, max_length=200, default="")
    phone = serializers.CharField(required=False, max_length=32, default="")
    email = serializers.EmailField(required=False, default="")
    tier = serializers.ChoiceField(choices=Customer.Tier.choices, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not any(data.get(f) for f in ("id", "external_id", "name", "phone", "email")):
            raise serializers.ValidationError({"name": ["Give the customer's id, external_id, name, phone or email."]})
        return data


class AttachmentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    url = serializers.URLField(max_length=1000, required=False)
    size = serializers.IntegerField(min_value=0, required=False)
    content_type = serializers.CharField(max_length=100, required=False)


class MessageInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=65535, trim_whitespace=False)
    sent_at = serializers.DateTimeField(required=False)
    external_id = serializers.CharField(required=False, max_length=200, default="")
    attachments = AttachmentSerializer(many=True, required=False, default=list)

    def validate_body(self, body: str) -> str:
        if not body.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return body


class TicketCreateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=255)
    channel = serializers.ChoiceField(choices=Channel.choices)
    category = serializers.SlugField(required=False, allow_null=True, max_length=50)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, default=Ticket.Priority.NORMAL)
    team = PrimaryKeyField(queryset=Team.objects.all(), required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    external_id = serializers.CharField(required=False, max_length=200, default="")
    conversation_id = serializers.CharField(required=False, max_length=200, default="")
    customer = CustomerInputSerializer()
    message = MessageInputSerializer()


class TicketUpdateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=255, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    category = serializers.SlugField(required=False, allow_null=True, max_length=50)
    team = PrimaryKeyField(queryset=Team.objects.all(), required=False, allow_null=True)
    assignee = PrimaryKeyField(queryset=Agent.objects.all(), required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    reason = serializers.CharField(required=False, max_length=200, default="")


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_kind", read_only=True)
    agent = AgentRefSerializer(source="author_agent", read_only=True)
    internal = serializers.BooleanField(source="is_internal", read_only=True)
    external_id = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "author", "agent", "internal", "body", "attachments", "sent_at", "created_at", "external_id"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_external_id(self, message: Message) -> str | None:
        return message.channel_message_id or None


class MessageCreateSerializer(MessageInputSerializer):
    author = serializers.ChoiceField(choices=[Message.AuthorKind.CUSTOMER, Message.AuthorKind.AGENT])
    agent = serializers.CharField(
        max_length=150, required=False,
        help_text="The replying agent's username; defaults to the caller's own agent profile.",
    )
    internal = serializers.BooleanField(default=False)
    status = serializers.ChoiceField(
        choices=Ticket.Status.choices, required=False, help_text="Agent replies only: the status to set after."
    )


    def validate_agent(self, username: str) -> Agent:
        agent = Agent.objects.select_related("user").filter(user__username=username).first()
        if agent is None:
            raise serializers.ValidationError(f"No agent has the username “{username}”.")
        return agent


class IngestSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    conversation_id = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=255, required=False, default="")
    customer = CustomerInputSerializer()
    message = MessageInputSerializer()


class IngestResultSerializer(serializers.Serializer):
    ticket = TicketSerializer()
    message = MessageSerializer()
    ticket_created = serializers.BooleanField()


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    error = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    failed = serializers.IntegerField()
    errors = ImportErrorSerializer(many=True)
