"""Tickets and their conversations."""

from __future__ import annotations

import re

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from helpdesk.history import AuditedRecords

from helpdesk.models import Agent, Channel, Customer, Tag, Team

REFERENCE_PREFIX = "T"
_REFERENCE_RE = re.compile(rf"^#?{REFERENCE_PREFIX}?0*(\d{{1,18}})$", re.IGNORECASE)


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

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

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

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True, editable=False)
    last_customer_message_at = models.DateTimeField(
        _("last customer message"), null=True, blank=True, editable=False
    )
    solved_at = models.DateTimeField(_("solved"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)

    # updated_at is recorded too: excluding a field makes simple-history re-read it on save.
    history = AuditedRecords(m2m_fields=[tags])

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        # One index per filter the list offers, in the list's default order, so a filtered
        # page reads only its rows.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="ticket_created_idx"),
            models.Index(fields=["status", "-created_at"], name="ticket_status_created_idx"),
            models.Index(fields=["team", "-created_at"], name="ticket_team_created_idx"),
            models.Index(fields=["assignee", "-created_at"], name="ticket_assignee_created_idx"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_created_idx"),
            models.Index(fields=["category", "-created_at"], name="ticket_category_created_idx"),
            models.Index(fields=["channel", "-created_at"], name="ticket_channel_created_idx"),
            models.Index(fields=["priority", "-created_at"], name="ticket_priority_created_idx"),
            models.Index(fields=["updated_at", "id"], name="ticket_updated_idx"),
            models.Index(
                fields=["channel", "conversation_id", "-id"],
                name="ticket_conversation_idx",
                condition=~models.Q(conversation_id=""),
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
        return f"{self.reference} {self.subject}"

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
    """The customer's satisfaction rating of a ticket: 1 to 5 stars."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat", verbose_name=_("ticket"))
    stars = models.PositiveSmallIntegerField(_("stars"))
    comment = models.TextField(_("comment"), blank=True)
    rated_at = models.DateTimeField(_("rated at"), default=timezone.now)

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        constraints = [
            models.CheckConstraint(condition=models.Q(stars__gte=1, stars__lte=5), name="csat_stars_1_to_5")
        ]

    def __str__(self) -> str:
        return "★" * self.stars
