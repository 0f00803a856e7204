"""Flagged tasks: late-acknowledged tasks stopped by the delivery guard (helpdesk.task_guard).

Administrators only. A row is a task whose worker died every time it ran; they find the cause in
the workers' logs (by task id), then mark the row resolved or run the task again.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext

from . import task_guard
from .errors import DomainError
from .models import TaskDelivery
from .roles import is_administrator


@admin.register(TaskDelivery)
class TaskDeliveryAdmin(admin.ModelAdmin):
    list_display = ["flagged_at", "name", "task_id", "deliveries", "worker", "first_started_at", "resolved_at", "resolved_by"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "name"]
    list_select_related = ["resolved_by"]
    search_fields = ["task_id", "name"]
    fields = readonly_fields = [
        "name", "task_id", "arguments", "queue", "deliveries", "worker", "first_started_at", "last_started_at",
        "flagged_at", "resolved_at", "resolved_by",
    ]
    actions = ["mark_resolved", "run_again"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskDelivery]:
        # Unflagged rows are tasks running now (or whose worker just died): nothing to act on.
        return super().get_queryset(request).filter(flagged_at__isnull=False)

    @admin.action(description=gettext_lazy("Mark as resolved"), permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[TaskDelivery]) -> None:
        count = task_guard.resolve(deliveries=queryset, user=request.user)
        self.message_user(request, ngettext("%d task marked resolved.", "%d tasks marked resolved.", count) % count, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Run again"), permissions=["change"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[TaskDelivery]) -> None:
        queued = 0
        for delivery in queryset:
            try:
                task_guard.run_again(delivery=delivery)
            except DomainError as error:
                self.message_user(request, f"{delivery}: {error.message}", messages.ERROR)
            else:
                queued += 1
        if queued:
            self.message_user(request, ngettext("%d task queued again.", "%d tasks queued again.", queued) % queued, messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Permissions, and the role too: these rows name tasks of every team and their arguments.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_administrator(request.user) and super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_administrator(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_administrator(request.user) and super().has_delete_permission(request, obj)
