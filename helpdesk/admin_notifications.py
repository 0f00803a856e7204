"""Each staff member's own notifications: SLA warnings and escalations addressed to them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Notification


class UnreadFilter(admin.SimpleListFilter):
    title = _("read")
    parameter_name = "unread"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("Unread")), ("0", _("Read"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        if self.value() in ("0", "1"):
            return queryset.filter(read_at__isnull=self.value() == "1")
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "text", "ticket_link", "read_at"]
    list_filter = [UnreadFilter, "kind"]
    list_select_related = ["ticket"]
    actions = ["mark_read"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).filter(recipient=request.user)  # one's own, whoever one is

    @admin.display(description=_("ticket"))
    def ticket_link(self, notification: Notification) -> str:
        if notification.ticket_id is None:
            return "—"
        url = reverse("admin:tickets_ticket_change", args=[notification.ticket_id])
        return format_html("<a href=\"{}\">{}</a>", url, notification.ticket.reference)

    @admin.action(description=_("Mark as read"), permissions=["view"])
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(read_at=None).update(read_at=timezone.now())
        self.message_user(request, ngettext("%d notification marked read.", "%d notifications marked read.", count) % count, messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.recipient_id == request.user.pk
