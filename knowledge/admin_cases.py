"""Training cases: solved conversations kept, anonymised, for training. They are made from the
ticket list or page ("Archive as training case"); here they are read and annotated."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from helpdesk.admin_history import AuditedAdmin
from helpdesk.errors import DomainError

from . import services
from .models import TrainingCase

ARCHIVE_PERMISSION = "knowledge.add_trainingcase"
ROLES = {"customer": gettext_lazy("Customer"), "agent": gettext_lazy("Agent"), "system": gettext_lazy("System")}


@admin.register(TrainingCase)
class TrainingCaseAdmin(AuditedAdmin):
    list_display = ["title", "category", "channel", "ticket_reference", "created_by", "created_at"]
    list_filter = ["category", "channel", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["category", "source_ticket", "created_by"]
    search_fields = ["title", "lessons"]
    fields = ["title", "lessons", "conversation", "category", "channel", "ticket_reference", "created_by", "created_at"]
    readonly_fields = ["conversation", "category", "channel", "ticket_reference", "created_by", "created_at"]

    class Media:
        css = {"all": ["knowledge/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made from a solved ticket: the ticket list's "Archive as training case"

    @admin.display(description=gettext_lazy("from ticket"), ordering="source_ticket_id")
    def ticket_reference(self, case: TrainingCase) -> str:
        # The reference only: the ticket's subject may name the customer.
        return case.source_ticket.reference if case.source_ticket_id else "—"

    @admin.display(description=gettext_lazy("conversation"))
    def conversation(self, case: TrainingCase) -> str:
        """The anonymised transcript as a thread, every text escaped."""
        lines = []
        for line in case.transcript:
            at = parse_datetime(line.get("at") or "")
            lines.append((
                line.get("role", "system"), ROLES.get(line.get("role"), line.get("role", "")),
                at.strftime("%Y-%m-%d %H:%M") if at else "", line.get("body", ""),
            ))
        if not lines:
            return "—"
        items = format_html_join(
            "", '<li class="kb-line kb-{}"><strong>{}</strong> <time>{}</time><div>{}</div></li>', lines
        )
        return format_html('<ol class="kb-transcript">{}</ol>', items)


@admin.action(description=gettext_lazy("Archive as training case"), permissions=["archive_case"])
def archive_as_training_case(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
    """For the ticket admin: each selected solved ticket becomes an anonymised training case.
    One ticket (the button on its page) opens the new case, to add what to learn from it."""
    made, refused = [], []
    for ticket in queryset.select_related("customer").order_by("pk")[:100]:
        try:
            made.append(services.archive_case(ticket=ticket, actor=request.user))
        except DomainError as error:
            refused.append(f"{ticket.reference}: {error.message}")
    if refused:
        modeladmin.message_user(request, _("Refused: %s") % "; ".join(refused[:20]), messages.ERROR)
    if made:
        modeladmin.message_user(
            request,
            ngettext("%d training case made.", "%d training cases made.", len(made)) % len(made),
            messages.SUCCESS,
        )
    if len(made) == 1 and not refused:
        return HttpResponseRedirect(reverse("admin:knowledge_trainingcase_change", args=[made[0].pk]))
    return None


def may_archive_cases(user: Any) -> bool:
    """Trainers, team leads and administrators."""
    return user.has_perm(ARCHIVE_PERMISSION)
