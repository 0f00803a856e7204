"""ImportJob: a history file uploaded through the API, imported by a worker (tickets.import_jobs)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """One uploaded file and how far its import got; counts and errors as the report gives them."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CHECKING = "checking", _("Checking every line")
        WRITING = "writing", _("Writing")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected: lines failed, nothing written")
        FAILED = "failed", _("Failed")

    class Format(models.TextChoices):
        JSONL = "jsonl", _("JSON Lines")
        CSV = "csv", _("CSV")

    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", blank=True)
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    format = models.CharField(_("format"), max_length=10, choices=Format.choices)
    encoding = models.CharField(_("encoding"), max_length=20, default="auto")
    partial = models.BooleanField(
        _("import the good lines"), default=False, help_text=_("Off: a file with a bad line imports nothing.")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    lines_total = models.PositiveIntegerField(_("lines"), null=True, blank=True, help_text=_("Known once checked."))
    lines_done = models.PositiveIntegerField(_("lines done"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    failed = models.PositiveIntegerField(_("failed lines"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True, help_text=_("The first 1,000, with line and field."))
    problem = models.TextField(_("problem"), blank=True, help_text=_("Why a failed job stopped."))

    class Meta:
        verbose_name = _("ticket import")
        verbose_name_plural = _("ticket imports")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="importjob_owner_recent"),
            models.Index(fields=["status", "-created_at"], name="importjob_status_recent"),  # the admin's filter
        ]

    def __str__(self) -> str:
        return f"{self.original_name or self.pk} ({self.get_status_display()})"

    @property
    def progress(self) -> float | None:
        """The share written, 0-1; None while the lines are still being counted."""
        if self.status == self.Status.DONE:
            return 1.0
        if self.status != self.Status.WRITING or not self.lines_total:
            return None
        return min(1.0, self.lines_done / self.lines_total)
