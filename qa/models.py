"""Quality assurance: scorecards, the daily sample and the reviews inspectors write."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.history import AuditedRecords
from helpdesk.models import Agent, Team
from tickets.models import Ticket

MIN_RATE = Decimal("0.05")
MAX_RATE = Decimal("0.10")


class Scorecard(models.Model):
    """A scorecard as inspectors know it; its criteria live in versions, so that editing a
    scorecard in use makes a new version and past reviews keep theirs."""

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("scorecard")
        verbose_name_plural = _("scorecards")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScorecardVersion(models.Model):
    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="versions", verbose_name=_("scorecard"))
    number = models.PositiveSmallIntegerField(_("version"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("scorecard version")
        verbose_name_plural = _("scorecard versions")
        ordering = ["scorecard", "-number"]
        constraints = [models.UniqueConstraint(fields=["scorecard", "number"], name="scorecard_version_unique")]

    def __str__(self) -> str:
        return f"{self.scorecard} v{self.number}"


class Criterion(models.Model):
    version = models.ForeignKey(ScorecardVersion, on_delete=models.CASCADE, related_name="criteria", verbose_name=_("version"))
    section = models.CharField(_("section"), max_length=100)
    code = models.SlugField(_("code"), max_length=50)
    title = models.CharField(_("criterion"), max_length=200)
    guidance = models.TextField(_("guidance"), blank=True)
    weight = models.DecimalField(
        _("weight"), max_digits=5, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.01"))]
    )
    max_points = models.PositiveSmallIntegerField(_("points"), default=2, validators=[MinValueValidator(1), MaxValueValidator(10)])
    allows_na = models.BooleanField(_("may be N/A"), default=True)
    critical = models.BooleanField(_("critical"), default=False, help_text=_("Failing it (0 points) makes the review 0."))
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")
        ordering = ["version", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "code"], name="criterion_code_unique_per_version")]

    def __str__(self) -> str:
        return self.title


class SampleScope(models.Model):
    """Where the daily sample is drawn (a team, or every team when none), and at what rate."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="qa_scope", verbose_name=_("team"),
        help_text=_("Blank: conversations of every team."),
    )
    rate = models.DecimalField(
        _("sampling rate"), max_digits=4, decimal_places=3, default=Decimal("0.05"),
        validators=[MinValueValidator(MIN_RATE), MaxValueValidator(MAX_RATE)],
        help_text=_("A share between 0.05 and 0.10 (5% to 10%)."),
    )
    scorecard = models.ForeignKey(Scorecard, on_delete=models.PROTECT, related_name="+", verbose_name=_("scorecard"))
    is_active = models.BooleanField(_("active"), default=True)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("sampling scope")
        verbose_name_plural = _("sampling scopes")
        constraints = [
            models.CheckConstraint(condition=models.Q(rate__gte=MIN_RATE, rate__lte=MAX_RATE), name="sample_scope_rate_5_to_10"),
            models.UniqueConstraint(fields=["team"], name="sample_scope_one_for_all", nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return str(self.team) if self.team_id else str(_("All teams"))


class SampleRun(models.Model):
    """One draw: unique per (day, scope), with the seed that reproduces it."""

    class Trigger(models.TextChoices):
        BEAT = "beat", _("Daily schedule")
        COMMAND = "command", _("Command")
        ADMIN = "admin", _("Admin action")

    day = models.DateField(_("day"))
    scope = models.ForeignKey(SampleScope, on_delete=models.PROTECT, related_name="runs", verbose_name=_("scope"))
    seed = models.BigIntegerField(_("seed"))
    rate = models.DecimalField(_("sampling rate"), max_digits=4, decimal_places=3)
    population = models.PositiveIntegerField(_("population"))
    trigger = models.CharField(_("drawn by"), max_length=10, choices=Trigger.choices)
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("who")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("sample run")
        verbose_name_plural = _("sample runs")
        ordering = ["-day", "scope"]
        constraints = [models.UniqueConstraint(fields=["day", "scope"], name="sample_run_once_per_day_and_scope")]

    def __str__(self) -> str:
        return f"{self.day} {self.scope}"


class Calibration(models.Model):
    """Several inspectors score the same conversations blind, to measure how far they agree.

    Its reviews never count in agents' scores.
    """

    name = models.CharField(_("name"), max_length=200)
    scorecard_version = models.ForeignKey(
        ScorecardVersion, on_delete=models.PROTECT, related_name="calibrations", verbose_name=_("scorecard")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("calibration")
        verbose_name_plural = _("calibrations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    """A sampled conversation an inspector scores; assigned when drawn, submitted when scored."""

    class Status(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        SUBMITTED = "submitted", _("Submitted")

    run = models.ForeignKey(SampleRun, on_delete=models.CASCADE, null=True, blank=True, related_name="reviews", verbose_name=_("sample run"))
    calibration = models.ForeignKey(
        Calibration, on_delete=models.CASCADE, null=True, blank=True, related_name="reviews", verbose_name=_("calibration")
    )
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="qa_reviews", verbose_name=_("ticket"))
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="qa_reviews", verbose_name=_("agent"))
    inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="qa_reviews_to_do",
        verbose_name=_("inspector"),
    )
    scorecard_version = models.ForeignKey(ScorecardVersion, on_delete=models.PROTECT, related_name="reviews", verbose_name=_("scorecard"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ASSIGNED)
    score = models.DecimalField(_("score"), max_digits=5, decimal_places=2, null=True, blank=True)
    strengths = models.TextField(_("strengths"), blank=True)
    shortcomings = models.TextField(_("shortcomings"), blank=True)
    coaching = models.TextField(_("coaching advice"), blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged by the agent"), null=True, blank=True)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("QA review")
        verbose_name_plural = _("QA reviews")
        ordering = ["-assigned_at", "-id"]
        indexes = [
            models.Index(fields=["inspector", "status"], name="review_inspector_queue_idx"),
            models.Index(fields=["agent", "-submitted_at"], name="review_agent_idx"),
            models.Index(fields=["submitted_at"], name="review_submitted_idx", condition=models.Q(submitted_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "ticket"], name="review_once_per_run_and_ticket"),
            models.UniqueConstraint(fields=["calibration", "ticket", "inspector"], name="review_once_per_calibration_rater"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket.reference} · {self.agent}"


class CriterionScore(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="scores", verbose_name=_("review"))
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+", verbose_name=_("criterion"))
    points = models.PositiveSmallIntegerField(_("points"), null=True, blank=True, help_text=_("Blank: N/A."))
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("criterion score")
        verbose_name_plural = _("criterion scores")
        constraints = [models.UniqueConstraint(fields=["review", "criterion"], name="criterion_score_once_per_review")]


class Dispute(models.Model):
    """An agent's objection to a review, resolved by a team lead: upheld, or scores amended."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        UPHELD = "upheld", _("Upheld")
        AMENDED = "amended", _("Scores amended")

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="dispute", verbose_name=_("review"))
    reason = models.TextField(_("reason"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    original_score = models.DecimalField(_("score before"), max_digits=5, decimal_places=2, null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("resolved by")
    )

    history = AuditedRecords()

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["status", "opened_at"], name="dispute_open_idx")]

    def __str__(self) -> str:
        return f"{self.review} · {self.get_status_display()}"
