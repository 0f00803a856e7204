"""Shapes of the tickets API. They check input and render output; services do the work."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from helpdesk.api.fields import InstantField, PrimaryKeyField, TextField, id_field
from helpdesk.models import Agent, Channel, Customer, Team
from helpdesk.pii import can_see_pii, masked_contact, shown_attachments, shown_contact, texts_shown_to
from helpdesk.queries import agents_visible_to

from .. import queries, sla
from ..models import Escalation, Message, SlaClock, SlaMetric, Ticket

# Output serializers are plain Serializers with their fields spelt out: a ModelSerializer
# rebuilds its fields from the model on every instance, which costs more than the query.


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class AgentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    display_name = serializers.CharField(read_only=True)


class CustomerBriefSerializer(serializers.Serializer):
    """A customer as the reader may see them: contact details masked without the PII right."""

    id = serializers.IntegerField(read_only=True, allow_null=True)
    external_id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    tier = serializers.CharField(read_only=True, allow_null=True)
    phone = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)

    def to_representation(self, customer: Customer) -> dict[str, Any]:
        data = super().to_representation(customer)
        data.update(shown_contact(customer, self.context["user"]))
        return data


def hidden_customer(customer: Customer) -> dict[str, Any]:
    """A ticket's customer the reader may not see (matched by a contact detail they typed): masked
    as for a role without the PII right, and without the id and tier that would find the record."""
    return {"id": None, "tier": None, **masked_contact(customer)}


class SlaClockSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=SlaMetric.choices, read_only=True)
    due_at = serializers.DateTimeField(read_only=True)
    paused = serializers.SerializerMethodField()
    breached = serializers.SerializerMethodField()
    fulfilled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    remaining_seconds = serializers.SerializerMethodField()

    def get_paused(self, clock: SlaClock) -> bool:
        return clock.paused_at is not None

    def get_breached(self, clock: SlaClock) -> bool:
        return clock.breached_at is not None

    @extend_schema_field(serializers.IntegerField(allow_null=True, help_text="Target time left; negative when overdue."))
    def get_remaining_seconds(self, clock: SlaClock) -> int | None:
        if not clock.is_running:
            return None
        return int(sla.remaining_seconds(clock, self.context.get("now") or timezone.now()))


class EscalationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=Escalation.Kind.choices, read_only=True)
    level = serializers.IntegerField(read_only=True, help_text="0: warning (automatic) or a hand-over (manual).")
    metric = serializers.SerializerMethodField()
    from_team = TeamRefSerializer(read_only=True, allow_null=True)
    to_team = TeamRefSerializer(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    response_due_at = serializers.DateTimeField(read_only=True, allow_null=True)
    returned_at = serializers.DateTimeField(read_only=True, allow_null=True)

    @extend_schema_field(TextField(allow_null=True))
    def get_metric(self, escalation: Escalation) -> str | None:
        return escalation.clock.metric if escalation.clock_id else None


class EscalateSerializer(serializers.Serializer):
    team = PrimaryKeyField(queryset=Team.objects.all())
    reason = TextField(max_length=500)


class HandBackSerializer(serializers.Serializer):
    note = TextField(max_length=400, required=False, default="")


def current_clocks(clocks: list[SlaClock]) -> list[SlaClock]:
    """Every running clock, and the latest of each metric that has none running."""
    running = [c for c in clocks if c.is_running]
    shown = {c.metric for c in running}
    latest: dict[str, SlaClock] = {}
    for clock in clocks:
        if clock.metric not in shown:
            latest[clock.metric] = clock
    return sorted([*running, *latest.values()], key=lambda c: (c.started_at, c.pk))


class TicketSerializer(serializers.Serializer):
    reference = serializers.CharField(read_only=True)
    external_id = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=Ticket.Status.choices, read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices, read_only=True)
    category = serializers.SerializerMethodField()
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, read_only=True)
    team = TeamRefSerializer(read_only=True, allow_null=True)
    assignee = AgentRefSerializer(read_only=True, allow_null=True)
    customer = CustomerBriefSerializer(read_only=True, help_text="id and tier are null for a customer the caller may not see.")
    tags = serializers.SerializerMethodField()
    conversation_id = serializers.CharField(read_only=True)
    previous_ticket = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    first_response_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_customer_message_at = serializers.DateTimeField(read_only=True, allow_null=True)
    solved_at = serializers.DateTimeField(read_only=True, allow_null=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    sla = serializers.SerializerMethodField()

    def to_representation(self, ticket: Ticket) -> dict[str, Any]:
        data = super().to_representation(ticket)
        if not ticket.discloses_customer and ticket.customer_id in self._hidden_customers(ticket):
            data["customer"] = hidden_customer(ticket.customer)
        return data

    def _hidden_customers(self, ticket: Ticket) -> set[int]:
        """Context["hidden_customers"] for a page (tickets.queries.hidden_customers); else asked once per customer."""
        hidden = self.context.get("hidden_customers")
        if hidden is None:
            hidden = queries.hidden_customers(self.context["user"], [ticket])
        return hidden

    @cached_property
    def _clock_serializer(self) -> SlaClockSerializer:
        # One for the whole page: building a serializer copies its fields, and a list page has
        # 50 tickets (under load this was 30% of the ticket list's time).
        return SlaClockSerializer(context=self.context)

    @extend_schema_field(SlaClockSerializer(many=True))
    def get_sla(self, ticket: Ticket) -> list[dict[str, Any]]:
        clocks = getattr(ticket, "opened_clocks", None)
        if clocks is None:
            clocks = list(ticket.sla_clocks.all())
        return [self._clock_serializer.to_representation(clock) for clock in current_clocks(clocks)]

    @extend_schema_field(TextField())
    def get_subject(self, ticket: Ticket) -> str:
        """Customers write subjects (an email's, or a chat's first words): scrubbed like their
        messages for roles without the PII right. A list passes context["shown_texts"] for its page."""
        shown = self.context.get("shown_texts")
        if shown is None:
            user = self.context["user"]
            hidden = self._hidden_customers(ticket) if not ticket.discloses_customer else set()
            if can_see_pii(user) and not hidden:
                return ticket.subject
            shown = texts_shown_to(user, [ticket.customer_id], hidden)
        return shown(ticket.customer_id, ticket.subject)

    @extend_schema_field(TextField(allow_null=True))
    def get_external_id(self, ticket: Ticket) -> str | None:
        return ticket.external_id or None

    @extend_schema_field(TextField(allow_null=True))
    def get_previous_ticket(self, ticket: Ticket) -> str | None:
        return Ticket(pk=ticket.previous_ticket_id).reference if ticket.previous_ticket_id else None

    @extend_schema_field(TextField(allow_null=True, help_text="The category's code."))
    def get_category(self, ticket: Ticket) -> str | None:
        return ticket.category.code if ticket.category_id else None

    @extend_schema_field(serializers.ListField(child=TextField()))
    def get_tags(self, ticket: Ticket) -> list[str]:
        return [tag.name for tag in ticket.tags.all()]


CUSTOMER_NAMED_BY = ("id", "external_id", "name", "phone", "email")


class CustomerInputSerializer(serializers.Serializer):
    """Names a customer: by id, external id, phone or email; made from the rest if new."""

    id = id_field(required=False)
    external_id = TextField(required=False, max_length=200, default="")
    name = TextField(required=False, max_length=200, default="")
    phone = TextField(required=False, max_length=32, default="")
    email = serializers.EmailField(required=False, default="")
    tier = serializers.ChoiceField(choices=Customer.Tier.choices, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not any(data.get(f) for f in CUSTOMER_NAMED_BY):
            raise serializers.ValidationError({"name": ["Give the customer's id, external_id, name, phone or email."]})
        return data


class CustomerInputScheme(OpenApiSerializerExtension):
    """The schema says what `validate` checks: at least one of the fields that name a customer."""

    target_class = CustomerInputSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["anyOf"] = [{"required": [name]} for name in CUSTOMER_NAMED_BY]
        return schema


class AttachmentSerializer(serializers.Serializer):
    name = TextField(max_length=255)
    url = serializers.URLField(max_length=1000, required=False)
    size = serializers.IntegerField(min_value=0, required=False)
    content_type = TextField(max_length=100, required=False)


class MessageInputSerializer(serializers.Serializer):
    body = TextField(max_length=65535, trim_whitespace=False)
    sent_at = InstantField(required=False)
    external_id = TextField(required=False, max_length=200, default="")
    attachments = AttachmentSerializer(many=True, required=False, default=list)

    def validate_body(self, body: str) -> str:
        if not body.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return body


class TicketCreateSerializer(serializers.Serializer):
    subject = TextField(max_length=255)
    channel = serializers.ChoiceField(choices=Channel.choices)
    category = serializers.SlugField(required=False, allow_null=True, max_length=50)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, default=Ticket.Priority.NORMAL)
    team = PrimaryKeyField(queryset=Team.objects.all(), required=False, allow_null=True)
    tags = serializers.ListField(child=TextField(max_length=50), required=False, max_length=50)
    external_id = TextField(required=False, max_length=200, default="")
    conversation_id = TextField(required=False, max_length=200, default="")
    customer = CustomerInputSerializer()
    message = MessageInputSerializer()


class TicketUpdateSerializer(serializers.Serializer):
    subject = TextField(max_length=255, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    category = serializers.SlugField(required=False, allow_null=True, max_length=50)
    team = PrimaryKeyField(queryset=Team.objects.all(), required=False, allow_null=True)
    assignee = PrimaryKeyField(queryset=Agent.objects.all(), required=False, allow_null=True)
    tags = serializers.ListField(child=TextField(max_length=50), required=False, max_length=50)

    def validate_assignee(self, agent: Agent | None) -> Agent | None:
        # An agent the caller may not see is as unknown as one that does not exist: the answer
        # would otherwise name another team's agent (helpdesk.queries.agents_visible_to).
        if agent is not None and not agents_visible_to(self.context["user"]).filter(pk=agent.pk).exists():
            self.fields["assignee"].fail("does_not_exist", pk_value=agent.pk)
        return agent


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    reason = TextField(required=False, max_length=200, default="")


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    author = serializers.CharField(source="author_kind", read_only=True)
    agent = AgentRefSerializer(source="author_agent", read_only=True, allow_null=True)
    internal = serializers.BooleanField(source="is_internal", read_only=True)
    body = serializers.CharField(read_only=True)
    attachments = serializers.JSONField(read_only=True)
    sent_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    external_id = serializers.SerializerMethodField()

    @extend_schema_field(TextField(allow_null=True))
    def get_external_id(self, message: Message) -> str | None:
        return message.channel_message_id or None

    def to_representation(self, message: Message) -> dict[str, Any]:
        """The text and files as the reader may see them: context["shown_text"] is the conversation's
        helpdesk.pii.text_shown_to (required, so no view can forget it)."""
        data = super().to_representation(message)
        shown = self.context["shown_text"]
        data["body"] = shown(data["body"])
        data["attachments"] = shown_attachments(data["attachments"], shown)
        return data


class MessageCreateSerializer(MessageInputSerializer):
    author = serializers.ChoiceField(choices=[Message.AuthorKind.CUSTOMER, Message.AuthorKind.AGENT])
    agent = TextField(
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
    conversation_id = TextField(max_length=200)
    subject = TextField(max_length=255, required=False, default="")
    customer = CustomerInputSerializer()
    message = MessageInputSerializer()


class IngestResultSerializer(serializers.Serializer):
    ticket = TicketSerializer()
    message = MessageSerializer()
    ticket_created = serializers.BooleanField()


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField(help_text="The field (JSON path) or CSV column; empty when the whole line is wrong.")
    error = TextField()


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    failed = serializers.IntegerField()
    written = serializers.BooleanField(help_text="False: lines failed and nothing was written.")
    errors = ImportErrorSerializer(many=True)


class ImportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True)
    format = serializers.CharField(read_only=True)
    encoding = serializers.CharField(read_only=True)
    partial = serializers.BooleanField(read_only=True)
    file_name = serializers.CharField(source="original_name", read_only=True)
    size = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    lines_total = serializers.IntegerField(read_only=True, allow_null=True)
    lines_done = serializers.IntegerField(read_only=True)
    progress = serializers.FloatField(read_only=True, allow_null=True)
    created = serializers.IntegerField(read_only=True)
    updated = serializers.IntegerField(read_only=True)
    failed = serializers.IntegerField(read_only=True)
    errors = ImportErrorSerializer(many=True, read_only=True)

    def get_url(self, job: Any) -> str:
        return reverse("import-job", kwargs={"job_id": job.pk}, request=self.context.get("request"))
