"""Automatic reply rules (audited) and the replies sent (read-only, scoped like tickets)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin
from helpdesk.models import Channel

from . import autoreplies
from .forms_autoreplies import AutoReplyRuleForm
from .models import AutoReply, AutoReplyRule, Ticket
from .queries import visible_to


def _forget_rules() -> None:
    # Now for this process, and again after commit so a request in between cannot cache the old rules.
    autoreplies.forget_rules()
    transaction.on_commit(autoreplies.forget_rules)


@admin.register(AutoReplyRule)
class AutoReplyRuleAdmin(AuditedAdmin):
    form = AutoReplyRuleForm
    list_display = ["name", "trigger", "language", "channel_list", "calendar", "is_active", "updated_at"]
    list_filter = ["trigger", "language", "is_active", "calendar"]
    list_select_related = ["calendar"]
    search_fields = ["name", "body"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        (_("When"), {"fields": ["trigger", "channels", "language", "calendar"]}),
        (_("Message"), {"fields": ["body"]}),
    ]

    @admin.display(description=_("channels"))
    def channel_list(self, rule: AutoReplyRule) -> str:
        if not rule.channels:
            return str(_("All"))
        labels = dict(Channel.choices)
        return ", ".join(str(labels.get(code, code)) for code in rule.channels)

    def save_model(self, request: HttpRequest, obj: AutoReplyRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _forget_rules()

    def delete_model(self, request: HttpRequest, obj: AutoReplyRule) -> None:
        super().delete_model(request, obj)
        _forget_rules()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AutoReplyRule]) -> None:
        super().delete_queryset(request, queryset)
        _forget_rules()


@admin.register(AutoReply)
class AutoReplyAdmin(admin.ModelAdmin):
    list_display = ["ticket_reference", "trigger", "key", "rule", "sent_at"]
    list_filter = ["trigger", ("sent_at", admin.DateFieldListFilter)]
    list_select_related = ["rule"]
    search_fields = ["key"]
    search_help_text = _("A ticket reference (T00012345) or a key (2026-11-24).")
    date_hierarchy = "sent_at"
    show_full_result_count = False

    @admin.display(description=_("ticket"), ordering="ticket_id")
    def ticket_reference(self, reply: AutoReply) -> str:
        reference = Ticket(pk=reply.ticket_id).reference  # derived from the id: no join
        return format_html('<a href="{}">{}</a>', reverse("admin:tickets_ticket_change", args=[reply.ticket_id]), reference)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AutoReply]:
        return super().get_queryset(request).filter(ticket__in=visible_to(request.user).values("pk"))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[AutoReply], search_term: str) -> tuple[QuerySet[AutoReply], bool]:
        pk = Ticket.pk_from_reference(search_term) if search_term else None
        if pk is not None:  # T00012345, #12345 or 12345; a key (a date) never reads as one
            return queryset.filter(ticket_id=pk), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # replies are sent by tickets.autoreplies, never written by hand

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
