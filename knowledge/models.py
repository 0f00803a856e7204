"""The knowledge base: reviewed articles, canned replies, search traffic and training cases.

An article has a working copy (title, body) that editors change, and a live copy (live_title,
live_body, live_html) that readers see: a change to a published article waits for a reviewer
other than its editor while the reviewed version stays live (knowledge.services).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.history import AuditedRecords
from helpdesk.models import Tag, Team


class KbCategory(models.Model):
    """A node of the article category tree (产品 › 手环 › 连接)."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100, unique=True, allow_unicode=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent"),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("article category")
        verbose_name_plural = _("article categories")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Audience(models.TextChoices):
    INTERNAL = "internal", _("Internal (agents only)")
    PUBLIC = "public", _("Public (help centre)")


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        IN_REVIEW = "in_review", _("In review")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    slug = models.SlugField(_("slug"), max_length=200, unique=True, allow_unicode=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body (Markdown)"), blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    category = models.ForeignKey(
        KbCategory, on_delete=models.PROTECT, null=True, blank=True, related_name="articles", verbose_name=_("category"),
    )
    tags = models.ManyToManyField(Tag, related_name="articles", blank=True, verbose_name=_("tags"))
    audience = models.CharField(_("audience"), max_length=10, choices=Audience.choices, default=Audience.INTERNAL)
    ticket_categories = models.ManyToManyField(
        "tickets.Category", related_name="articles", blank=True, verbose_name=_("ticket categories"),
        help_text=_("The kinds of ticket this article answers: suggested on them, and counted by the gap report."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_articles",
        verbose_name=_("owner"), help_text=_("Keeps the article current; reminded when its review falls due."),
    )

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False,
        verbose_name=_("created by"),
    )
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False,
        verbose_name=_("last edited by"),
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False,
        verbose_name=_("sent for review by"),
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False,
        verbose_name=_("reviewed by"),
    )
    review_note = models.TextField(_("review note"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)

    # The version readers see: copied from the working copy when a reviewer publishes it.
    live_title = models.CharField(_("published title"), max_length=200, blank=True, editable=False)
    live_body = models.TextField(_("published body"), blank=True, editable=False)
    live_html = models.TextField(_("published HTML"), blank=True, editable=False)
    live_audience = models.CharField(
        _("published audience"), max_length=10, choices=Audience.choices, blank=True, editable=False,
        help_text=_("Who reads the published version: a change of audience waits for review like any other."),
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    review_due_on = models.DateField(
        _("review due"), null=True, blank=True,
        help_text=_("When the owner should check the article is still right; 90 days after publishing by default."),
    )
    review_reminded_on = models.DateField(_("owner reminded"), null=True, blank=True, editable=False)

    helpful_count = models.PositiveIntegerField(_("helpful"), default=0, editable=False)
    unhelpful_count = models.PositiveIntegerField(_("not helpful"), default=0, editable=False)
    usage_count = models.PositiveIntegerField(_("used in tickets"), default=0, editable=False)

    # Search (knowledge.search): the text segmented into words, Chinese included, and on
    # PostgreSQL a weighted vector of it (title A, tags B, body C).
    search_title = models.TextField(editable=False, blank=True)
    search_body = models.TextField(editable=False, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)

    history = AuditedRecords(
        m2m_fields=[tags, ticket_categories],
        excluded_fields=[
            "updated_at", "helpful_count", "unhelpful_count", "usage_count", "review_reminded_on",
            "search_title", "search_body", "search_vector", "live_html",
        ],
    )

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="article_status_idx"),
            models.Index(fields=["live_audience", "status"], name="article_audience_idx"),
            models.Index(fields=["review_due_on"], name="article_review_due_idx", condition=models.Q(status="published")),
            # and on PostgreSQL a GIN index on search_vector (migration 0001: SQLite has none)
        ]
        permissions = [("publish_article", _("Can review and publish articles"))]

    def __str__(self) -> str:
        return self.live_title or self.title

    @property
    def is_live(self) -> bool:
        """Readers see it: a reviewed version exists and the article is not archived."""
        return self.published_at is not None and self.status != self.Status.ARCHIVED

    @property
    def shown_title(self) -> str:
        return self.live_title if self.is_live else self.title

    @property
    def shown_audience(self) -> str:
        return self.live_audience if self.is_live else self.audience


class ArticleFeedback(models.Model):
    """A reader's verdict: helpful or not. One per signed-in user and article."""

    class Source(models.TextChoices):
        AGENT = "agent", _("Agent")
        PUBLIC = "public", _("Public reader")

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("article"))
    helpful = models.BooleanField(_("helpful"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("user"),
    )
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("article feedback")
        verbose_name_plural = _("article feedback")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["article", "-created_at"], name="feedback_article_idx")]
        constraints = [
            models.UniqueConstraint(fields=["article", "user"], condition=models.Q(user__isnull=False), name="feedback_one_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} {'+' if self.helpful else '-'}"


class ArticleUse(models.Model):
    """An article an agent put into a reply on a ticket: the usage count, one per ticket."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="uses", verbose_name=_("article"))
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="article_uses", verbose_name=_("ticket"),
    )
    agent = models.ForeignKey(
        "helpdesk.Agent", on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("agent"),
    )
    created_at = models.DateTimeField(_("used at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("article use")
        verbose_name_plural = _("article uses")
        constraints = [models.UniqueConstraint(fields=["article", "ticket"], name="article_use_once_per_ticket")]
        indexes = [models.Index(fields=["ticket"], name="article_use_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.article_id} → {self.ticket_id}"


class CannedReply(models.Model):
    """A stock phrase (快捷短语/话术) agents insert into the reply box; global or for one team."""

    PLACEHOLDERS = ("customer_name", "ticket_ref", "agent_name", "expected_reply_time")

    title = models.CharField(_("title"), max_length=100)
    shortcut = models.SlugField(
        _("shortcut"), max_length=30, blank=True, allow_unicode=True,
        help_text=_("Typed after a slash in the reply box, e.g. greeting for /greeting."),
    )
    body = models.TextField(
        _("text"), help_text=_("Placeholders: {customer_name}, {ticket_ref}, {agent_name}, {expected_reply_time}."),
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="canned_replies", verbose_name=_("team"),
        help_text=_("Empty: every team may use it."),
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    history = AuditedRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["position", "title", "id"]
        indexes = [models.Index(fields=["team", "is_active"], name="canned_reply_team_idx")]

    def __str__(self) -> str:
        return self.title


class SearchLog(models.Model):
    """One knowledge-base search: what was asked and how well it was answered (the gap report)."""

    class Source(models.TextChoices):
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        ASSIST = "assist", _("Agent assist")

    query = models.CharField(_("query"), max_length=200)
    normalized = models.CharField(_("normalised query"), max_length=200, db_index=False)
    results = models.PositiveIntegerField(_("results"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    public = models.BooleanField(_("public caller"), default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("searched at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("search")
        verbose_name_plural = _("searches")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], name="searchlog_created_idx", include=["normalized", "results"]),
            models.Index(
                fields=["created_at"], name="searchlog_zero_idx", condition=models.Q(results=0), include=["normalized"],
            ),
        ]

    def __str__(self) -> str:
        return self.query


class TrainingCase(models.Model):
    """A solved conversation kept for training, with the customer's details taken out."""

    title = models.CharField(_("title"), max_length=200)
    source_ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.SET_NULL, null=True, blank=True, related_name="training_cases",
        verbose_name=_("from ticket"),
    )
    category = models.ForeignKey(
        "tickets.Category", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("category"),
    )
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    lessons = models.TextField(_("what to learn from it"), blank=True)
    # [{"role": "customer" | "agent" | "system", "at": ISO time, "body": anonymised text}]
    transcript = models.JSONField(_("conversation"), default=list, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False,
        verbose_name=_("archived by"),
    )
    created_at = models.DateTimeField(_("archived at"), default=timezone.now, editable=False)

    history = AuditedRecords(excluded_fields=["transcript"])

    class Meta:
        verbose_name = _("training case")
        verbose_name_plural = _("training cases")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title
