"""Ticket imports in the admin: what each uploaded file did, read-only (the API and the command import)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "format", "status", "shown_progress", "created", "updated", "failed",
                    "created_by", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    fields = ["original_name", "format", "encoding", "partial", "size", "status", "created_by", "created_at",
              "started_at", "finished_at", "lines_total", "lines_done", "created", "updated", "failed", "shown_errors",
              "problem"]
    readonly_fields = fields

    @admin.display(description=_("progress"))
    def shown_progress(self, job: ImportJob) -> str:
        if job.progress is None:
            return f"{job.lines_done}" if job.status == ImportJob.Status.CHECKING else "–"
        return f"{job.progress:.0%}"

    @admin.display(description=_("errors"))
    def shown_errors(self, job: ImportJob) -> Any:
        return format_html_join(
            "", "<div>{} {}: {} {}</div>", ((_("line"), e["line"], e.get("field", ""), e["error"]) for e in job.errors)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False
