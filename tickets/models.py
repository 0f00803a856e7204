"""Tickets and their conversations."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, When
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from helpdesk.history import AuditedRecords
from helpdesk.models import Agent, BusinessCalendar, Channel, Customer, Skill, Tag, Team

from .seconds import SecondsBetween

REFERENCE_PREFIX = "T"
_REFERENCE_RE = re.compile(rf"^#?{REFERENCE_PREFIX}?0*(\d{{1,18}})$", re.IGNORECASE)
# Columns the database computes (GeneratedField): not audited, never written.
GENERATED = ("first_response_seconds", "resolution_seconds", "handle_seconds")


class Priority(models.TextChoices):
    """How soon a ticket needs resolving; Ticket.Priority. Categories name a minimum one."""

    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Category(models.Model):
    """An editable tree of what conversations are about; `code` is stable for the API."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    minimum_priority = models.CharField(
        _("minimum priority"), max_length=10, blank=True, choices=Priority.choices,
        help_text=_("Tickets filed under this category are raised to at least this priority."),
    )

    history = AuditedRecords()

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        if get_language() and not get_language().startswith("zh") and self.name_en:
            return self.name_en
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending (waiting on customer)")
        ON_HOLD = "on_hold", _("On hold (waiting on another team)")
        SOLVED = "solved", _("Solved")
        CLOSED = "closed", _("Closed")

    Priority = Priority

    subject = models.CharField(_("subject"), max_length=255)
    external_id = models.CharField(
        _("external id"), max_length=200, blank=True, help_text=_("The ticket's id in the system it came from.")
    )
    conversation_id = models.CharField(
        _("conversation id"), max_length=200, blank=True, help_text=_("The channel's id of the conversation.")
    )
    previous_ticket = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
        verbose_name=_("previous ticket"),
        help_text=_("The closed ticket of the same conversation this one continues."),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("customer")
    )
    # False when whoever opened the ticket could not see the customer it was matched to (by a
    # phone, email or external id): seeing the ticket then does not show the customer's record
    # (tickets.queries.customers_visible_to), or typing a phone number would disclose a customer.
    # The database default keeps rows written in SQL (bulk loads, the benchmarks' fills) valid.
    discloses_customer = models.BooleanField(
        _("shows its customer"), default=True, db_default=True, editable=False
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("category"),
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.NEW, editable=False
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("team"),
    )
    assignee = models.ForeignKey(
        Agent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("assignee"),
    )
    tags = models.ManyToManyField(Tag, related_name="tickets", blank=True, verbose_name=_("tags"))
    required_skill = models.ForeignKey(
        Skill, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("required skill"),
        help_text=_("Set by routing: only agents with this skill are given the ticket."),
    )

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True, editable=False)
    last_customer_message_at = models.DateTimeField(
        _("last customer message"), null=True, blank=True, editable=False
    )
    solved_at = models.DateTimeField(_("solved"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True, editable=False)
    # Zendesk's definitions: requester wait is time in new, open and on hold; agent work time in
    # new and open. Calendar seconds up to the last status change, for reports.
    requester_wait_seconds = models.PositiveIntegerField(_("requester wait (s)"), default=0, editable=False)
    agent_work_seconds = models.PositiveIntegerField(_("agent work time (s)"), default=0, editable=False)
    # For first-contact resolution and the reopen rate (docs/metrics.md): kept by the services.
    public_replies = models.PositiveIntegerField(_("public agent replies"), default=0, editable=False)
    reopens = models.PositiveIntegerField(_("times reopened"), default=0, editable=False)
    # Set when the conversation's customer details were removed (retention or erasure,
    # helpdesk.privacy): the marker that makes a second pass skip the ticket.
    anonymised_at = models.DateTimeField(_("anonymised"), null=True, blank=True, editable=False)
    # Report durations (docs/metrics.md), computed by the database from the columns above, so
    # they can never drift from them; the report indexes carry them and aggregates read plain
    # numbers instead of subtracting timestamps row by row.
    first_response_seconds = models.GeneratedField(
        expression=SecondsBetween(F("first_response_at"), F("created_at")), output_field=models.FloatField(),
        db_persist=True, verbose_name=_("first response time (s)"),
    )
    resolution_seconds = models.GeneratedField(
        expression=SecondsBetween(F("solved_at"), F("created_at")), output_field=models.FloatField(),
        db_persist=True, verbose_name=_("resolution time (s)"),
    )
    handle_seconds = models.GeneratedField(
        expression=Case(
            When(agent_work_seconds__gt=0, then=Cast("agent_work_seconds", models.FloatField())),
            default=SecondsBetween(F("solved_at"), F("first_response_at")),
        ),
        output_field=models.FloatField(), db_persist=True, verbose_name=_("handle time (s)"),
    )

    # updated_at is recorded too: excluding a field makes simple-history re-read it on save.
    # The generated durations are not: they follow from the recorded timestamps.
    history = AuditedRecords(m2m_fields=[tags], excluded_fields=list(GENERATED))

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        # One index per filter the list offers, in the list's default order, so a filtered
        # page reads only its rows. Those a report filters by carry the id too: a report joins
        # clocks, escalations and reviews to the tickets of a team (agent, channel, category)
        # and reads them from the index alone.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="ticket_created_idx"),
            models.Index(fields=["status", "-created_at"], name="ticket_status_created_idx"),
            models.Index(fields=["team", "-created_at"], name="ticket_team_created_idx", include=["id"]),
            models.Index(fields=["assignee", "-created_at"], name="ticket_assignee_created_idx", include=["id"]),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_created_idx"),
            models.Index(fields=["category", "-created_at"], name="ticket_category_created_idx", include=["id"]),
            models.Index(fields=["channel", "-created_at"], name="ticket_channel_created_idx", include=["id"]),
            models.Index(fields=["priority", "-created_at"], name="ticket_priority_created_idx"),
            models.Index(fields=["updated_at", "id"], name="ticket_updated_idx"),
            models.Index(
                fields=["channel", "conversation_id", "-id"],
                name="ticket_conversation_idx",
                condition=~models.Q(conversation_id=""),
            ),
            # A team's queue: waiting tickets nobody holds, oldest first.
            models.Index(
                fields=["team", "created_at"],
                name="ticket_queue_idx",
                condition=models.Q(assignee=None, status__in=["new", "open"]),
            ),
            # An agent's load: the conversations they hold (new, open), counted up to capacity.
            # Not partial: a prepared statement's generic plan cannot prove `status IN ($1, $2)`
            # implies a partial index's predicate, and would read all the agent's tickets.
            models.Index(fields=["assignee", "status"], name="ticket_load_idx"),
            # Reports read a range of tickets by when they were made or last solved; on PostgreSQL
            # these carry every column a report reads, so the range is read from the index alone.
            models.Index(
                fields=["created_at"], name="ticket_report_created_idx",
                include=["solved_at", "first_response_seconds", "channel", "category", "team", "assignee"],
            ),
            models.Index(
                fields=["solved_at"], name="ticket_report_solved_idx", condition=models.Q(solved_at__isnull=False),
                include=[
                    "created_at", "resolution_seconds", "handle_seconds", "public_replies", "reopens",
                    "channel", "category", "team", "assignee",
                ],
            ),
            # The retention sweep reads only closed tickets not yet anonymised, by when they closed.
            models.Index(
                fields=["closed_at", "id"],
                name="ticket_retention_idx",
                condition=models.Q(status="closed", anonymised_at__isnull=True),
            ),
            # The auto-close sweep reads only solved tickets, by when they were solved.
            models.Index(
                fields=["solved_at"],
                name="ticket_solved_sweep_idx",
                condition=models.Q(status="solved"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~models.Q(external_id=""), name="ticket_external_id_unique"
            ),
            # One ticket at a time per chat conversation: two first messages arriving at once
            # must not open two tickets.
            models.UniqueConstraint(
                fields=["channel", "conversation_id"],
                condition=~models.Q(conversation_id="") & ~models.Q(status="closed"),
                name="ticket_one_open_per_conversation",
            ),
        ]
        permissions = [
            ("ingest_messages", _("Can push channel messages into any conversation")),
            ("import_tickets", _("Can import ticket history")),
        ]

    def __str__(self) -> str:
        # The reference only: customers write subjects (their phone, an order number), and a
        # ticket's name is shown where nothing masks it (history titles, review pages, links).
        return self.reference

    @property
    def reference(self) -> str:
        """The human-readable name of the ticket, derived from its id: T00012345."""
        return f"{REFERENCE_PREFIX}{self.pk:08d}" if self.pk else ""

    @staticmethod
    def pk_from_reference(reference: str) -> int | None:
        """The id a reference names ("T00012345", "#12345", "12345"), or None."""
        match = _REFERENCE_RE.match(reference.strip())
        return int(match.group(1)) if match else None


class Message(models.Model):
    """One entry of a ticket's conversation: a customer message, an agent reply or note."""

    class AuthorKind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="messages", verbose_name=_("ticket")
    )
    author_kind = models.CharField(_("author"), max_length=10, choices=AuthorKind.choices)
    author_agent = models.ForeignKey(
        Agent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("agent"),
    )
    is_internal = models.BooleanField(_("internal note"), default=False)
    body = models.TextField(_("body"))
    attachments = models.JSONField(
        _("attachments"),
        default=list,
        blank=True,
        help_text=_("Metadata only: name, url, size and content type of each file."),
    )
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    created_at = models.DateTimeField(_("received at"), default=timezone.now, editable=False)
    channel_message_id = models.CharField(_("channel message id"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["sent_at", "id"]
        indexes = [models.Index(fields=["ticket", "sent_at", "id"], name="message_thread_idx")]
        constraints = [
            # A channel that resends a message must not add it twice to the conversation.
            models.UniqueConstraint(
                fields=["ticket", "channel_message_id"],
                condition=~models.Q(channel_message_id=""),
                name="message_unique_channel_id_per_ticket",
            ),
            models.CheckConstraint(
                condition=~models.Q(author_kind="customer", is_internal=True),
                name="message_customer_never_internal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_author_kind_display()} @ {self.sent_at:%Y-%m-%d %H:%M}"

    @property
    def is_public_agent_reply(self) -> bool:
        return self.author_kind == self.AuthorKind.AGENT and not self.is_internal


class Csat(models.Model):
    """The customer's satisfaction rating of a ticket: 1 to 5 stars; a later rating replaces it."""

    class Source(models.TextChoices):
        SURVEY = "survey", _("Survey page")
        API = "api", _("Another system")
        IMPORT = "import", _("Import")

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat", verbose_name=_("ticket"))
    stars = models.PositiveSmallIntegerField(_("stars"))
    comment = models.TextField(_("comment"), blank=True)
    rated_at = models.DateTimeField(_("rated at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.IMPORT)
    # Who answered, when rated: the agent and team the rating counts for in reports.
    agent = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("agent")
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("team"))

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        indexes = [models.Index(fields=["rated_at"], name="csat_rated_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(stars__gte=1, stars__lte=5), name="csat_stars_1_to_5")
        ]

    def __str__(self) -> str:
        return "★" * self.stars


class CsatSurvey(models.Model):
    """An invitation to rate a solved ticket: its link is signed, single use and expires."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="surveys", verbose_name=_("ticket"))
    nonce = models.UUIDField(_("nonce"), default=uuid.uuid4, unique=True, editable=False)
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"), editable=False)
    used_at = models.DateTimeField(_("answered at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"{self.ticket.reference} {self.sent_at:%Y-%m-%d}"


class Complaint(models.Model):
    """The complaint loop: a rating of 1 or 2 stars, followed up by the team lead."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    class RootCause(models.TextChoices):
        SLOW_RESPONSE = "slow_response", _("Slow response")
        UNCLEAR_SOLUTION = "unclear_solution", _("Unclear solution")
        ATTITUDE = "attitude", _("Attitude")
        PROCESS = "process", _("Process")
        PRODUCT = "product", _("Product")
        DELIVERY = "delivery", _("Delivery")
        OTHER = "other", _("Other")

    csat = models.OneToOneField(Csat, on_delete=models.CASCADE, related_name="complaint", verbose_name=_("rating"))
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="complaints", verbose_name=_("ticket"))
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("team"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    root_cause = models.CharField(_("root cause"), max_length=20, choices=RootCause.choices, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("closed by"),
    )

    history = AuditedRecords()

    class Meta:
        verbose_name = _("complaint follow-up")
        verbose_name_plural = _("complaint follow-ups")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "team", "-created_at"], name="complaint_open_idx")]

    def __str__(self) -> str:
        return f"{self.ticket.reference} {self.get_status_display()}"


class RoutingRule(models.Model):
    """Where a new ticket goes: rules are tried in order and the first match wins.

    An empty condition matches everything. Keywords are one per line, matched in the first
    message; a rule that matches on keywords also suggests its category when the sender gave none.
    """

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    tiers = models.JSONField(_("customer tiers"), default=list, blank=True)
    categories = models.ManyToManyField(Category, blank=True, related_name="+", verbose_name=_("categories"))
    keywords = models.TextField(_("keywords"), blank=True, help_text=_("One per line; any of them matches."))
    weekdays = models.JSONField(
        _("weekdays"), default=list, blank=True, help_text=_("1 is Monday, 7 is Sunday; empty means every day.")
    )
    starts_at = models.TimeField(_("from"), null=True, blank=True, help_text=_("Local time; empty means all day."))
    ends_at = models.TimeField(_("until"), null=True, blank=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", verbose_name=_("team"))
    skill = models.ForeignKey(
        Skill, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("required skill")
    )
    suggested_category = models.ForeignKey(
        Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("category to suggest"), help_text=_("Given to a ticket that arrives without a category."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = AuditedRecords(m2m_fields=[categories], excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class AutoReplyRule(models.Model):
    """A message sent for the team: an acknowledgement, or a notice outside hours or on holidays."""

    class Trigger(models.TextChoices):
        ACKNOWLEDGEMENT = "acknowledgement", _("First acknowledgement")
        OUTSIDE_HOURS = "outside_hours", _("Outside business hours")
        HOLIDAY = "holiday", _("Holiday")

    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.PROTECT, verbose_name=_("business calendar"),
        help_text=_("Whose hours and holidays decide when the rule applies."),
    )
    body = models.TextField(
        _("message"),
        help_text=_("Placeholders: {customer_name}, {ticket_ref}, {expected_reply_time}."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = AuditedRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("automatic reply")
        verbose_name_plural = _("automatic replies")
        ordering = ["trigger", "language", "id"]

    def __str__(self) -> str:
        return self.name


class AutoReply(models.Model):
    """One automatic reply sent; unique per ticket, trigger and key so it is never sent twice."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="auto_replies", verbose_name=_("ticket"))
    rule = models.ForeignKey(AutoReplyRule, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("rule"))
    trigger = models.CharField(_("trigger"), max_length=20, choices=AutoReplyRule.Trigger.choices)
    key = models.CharField(_("key"), max_length=50, blank=True, help_text=_("Which occurrence of the trigger, e.g. the closed day."))
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="+", verbose_name=_("message"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("automatic reply sent")
        verbose_name_plural = _("automatic replies sent")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "trigger", "key"], name="auto_reply_once_per_trigger")
        ]


class SlaMetric(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    NEXT_RESPONSE = "next_response", _("Next response")
    PERIODIC_UPDATE = "periodic_update", _("Periodic update")
    RESOLUTION = "resolution", _("Resolution")
    HANDOVER = "handover", _("Escalated team's response")


class SlaPolicy(models.Model):
    """Targets for the tickets it matches; policies are tried in order and the first match wins.

    An empty condition matches everything. Editing a policy moves running clocks too (docs/sla.md).
    """

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    priorities = models.JSONField(_("priorities"), default=list, blank=True)
    tiers = models.JSONField(_("customer tiers"), default=list, blank=True)
    categories = models.ManyToManyField(Category, blank=True, related_name="+", verbose_name=_("categories"))
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("business calendar"),
        help_text=_("Targets in business time count only this calendar's working hours."),
    )
    pause_statuses = models.JSONField(_("statuses that pause the clocks"), default=list, blank=True)
    warn_at = models.DecimalField(
        _("warn at share of target"), max_digits=3, decimal_places=2, default=Decimal("0.80"),
        validators=[MinValueValidator(Decimal("0.05")), MaxValueValidator(Decimal("0.99"))],
    )
    level2_after = models.PositiveIntegerField(
        _("level 2 after breach (seconds)"), default=3600,
        help_text=_("Then the department manager is notified and the ticket moves to the escalation team."),
    )
    level3_after = models.PositiveIntegerField(
        _("level 3 after level 2 (seconds)"), default=4 * 3600, help_text=_("Then administrators are notified.")
    )
    escalation_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("escalation team")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = AuditedRecords(m2m_fields=[categories], excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class SlaTarget(models.Model):
    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets", verbose_name=_("policy"))
    metric = models.CharField(_("metric"), max_length=20, choices=SlaMetric.choices)
    priority = models.CharField(
        _("priority"), max_length=10, choices=Ticket.Priority.choices, blank=True, help_text=_("Blank: any priority.")
    )
    seconds = models.PositiveIntegerField(_("target (seconds)"), validators=[MinValueValidator(1)])
    business_hours = models.BooleanField(_("in business hours"), default=False)

    class Meta:
        verbose_name = _("SLA target")
        verbose_name_plural = _("SLA targets")
        ordering = ["policy", "metric", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "metric", "priority"], name="sla_target_unique"),
            models.CheckConstraint(condition=models.Q(seconds__gte=1), name="sla_target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.get_priority_display() or '*'}: {self.seconds}s"


class SlaClock(models.Model):
    """One running target of one ticket. The sweep reads only `next_check_at`, indexed for
    clocks that still have something to do, so its cost follows what is due, not open tickets."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_clocks", verbose_name=_("ticket"))
    metric = models.CharField(_("metric"), max_length=20, choices=SlaMetric.choices)
    policy = models.ForeignKey(SlaPolicy, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("policy"))
    target_seconds = models.PositiveIntegerField(_("target (seconds)"))
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("business calendar"), help_text=_("Blank: calendar time."),
    )
    started_at = models.DateTimeField(_("started"))
    due_at = models.DateTimeField(_("due"))
    warn_at = models.DateTimeField(_("warning due"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused since"), null=True, blank=True)
    warned_at = models.DateTimeField(_("warned"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached"), null=True, blank=True)
    fulfilled_at = models.DateTimeField(_("fulfilled"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True)
    # When due_at was last computed: a recompute for a calendar edit leaves the clocks computed after it alone.
    scheduled_at = models.DateTimeField(_("deadline computed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")
        ordering = ["ticket", "started_at", "id"]
        indexes = [
            models.Index(fields=["next_check_at"], name="sla_clock_next_check_idx", condition=models.Q(next_check_at__isnull=False)),
            models.Index(fields=["ticket", "metric"], name="sla_clock_ticket_idx"),
            models.Index(
                fields=["due_at"], name="sla_clock_running_due_idx",
                condition=models.Q(fulfilled_at__isnull=True, stopped_at__isnull=True, paused_at__isnull=True),
            ),
            # Reports read the clocks decided in a range; on PostgreSQL from these indexes alone.
            models.Index(
                fields=["breached_at"], name="sla_clock_breached_idx", condition=models.Q(breached_at__isnull=False),
                include=["metric", "fulfilled_at", "ticket"],
            ),
            models.Index(
                fields=["fulfilled_at"], name="sla_clock_fulfilled_idx", condition=models.Q(fulfilled_at__isnull=False),
                include=["metric", "breached_at", "started_at", "ticket"],
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "metric"], name="sla_clock_one_running_per_metric",
                condition=models.Q(fulfilled_at__isnull=True, stopped_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket.reference} {self.get_metric_display()}"

    @property
    def is_running(self) -> bool:
        return self.fulfilled_at is None and self.stopped_at is None


class Escalation(models.Model):
    """A step of the escalation plan (0 is the warning), or a hand-over to another department."""

    class Kind(models.TextChoices):
        AUTOMATIC = "automatic", _("Automatic (SLA)")
        MANUAL = "manual", _("Manual")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations", verbose_name=_("ticket"))
    clock = models.ForeignKey(
        SlaClock, on_delete=models.CASCADE, null=True, blank=True, related_name="escalations", verbose_name=_("SLA clock")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    level = models.PositiveSmallIntegerField(_("level"))
    from_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("from team")
    )
    to_team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("to team"))
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    response_due_at = models.DateTimeField(_("response due"), null=True, blank=True)
    returned_at = models.DateTimeField(_("handed back"), null=True, blank=True)

    class Meta:
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        ordering = ["ticket", "created_at", "id"]
        indexes = [models.Index(fields=["created_at"], name="escalation_created_idx")]
        constraints = [
            models.UniqueConstraint(fields=["clock", "level"], name="escalation_once_per_clock_level", condition=models.Q(clock__isnull=False)),
            models.UniqueConstraint(
                fields=["ticket"], name="escalation_one_open_handover",
                condition=models.Q(kind="manual", returned_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket.reference} L{self.level}"


class ReportSubscription(models.Model):
    """Who gets the weekly or monthly operations report by email, for which team (or all)."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("Weekly (Monday, for the week before)")
        MONTHLY = "monthly", _("Monthly (the 1st, for the month before)")

    name = models.CharField(_("name"), max_length=100)
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    recipients = models.TextField(_("recipients"), help_text=_("Email addresses, one per line."))
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("team"),
        help_text=_("Empty: the whole support centre."),
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    is_active = models.BooleanField(_("active"), default=True)
    last_period_sent = models.DateField(
        _("last period sent"), null=True, blank=True, editable=False,
        help_text=_("The first day of the last period reported: a period is never sent twice."),
    )

    history = AuditedRecords()

    class Meta:
        verbose_name = _("report subscription")
        verbose_name_plural = _("report subscriptions")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


from .models_imports import ImportJob  # noqa: E402,F401  one app, two model modules (size)
