"""SLA policies, clocks and escalations in the admin, and the SLA column of the ticket list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin

from . import sla, sla_reschedule
from .forms import SlaPolicyForm, SlaTargetFormSet
from .models import Escalation, SlaClock, SlaPolicy, SlaTarget, Ticket
from .queries import visible_to

RUNNING = Q(  # counting down now
    fulfilled_at=None, stopped_at=None, paused_at=None)
RETARGET_QUEUED = _(
    "Running SLA clocks are being moved to the edited targets in the background (time already used is kept)."
)
WARNING_SHARE = 0.2  # "warning" in the list: less than a fifth of the target left


class SlaTargetInline(admin.TabularInline):
    model = SlaTarget
    formset = SlaTargetFormSet
    extra = 1


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AuditedAdmin):
    form = SlaPolicyForm
    list_display = ["name", "position", "is_active", "calendar", "escalation_team"]
    list_editable = ["position", "is_active"]
    list_select_related = ["calendar", "escalation_team"]
    filter_horizontal = ["categories"]
    inlines = [SlaTargetInline]
    fieldsets = [
        (None, {"fields": ["name", "position", "is_active"]}),
        (_("Applies to"), {"fields": ["channels", "priorities", "tiers", "categories"]}),
        (_("Clocks"), {"fields": ["calendar", "pause_statuses"]}),
        (_("Escalation plan"), {"fields": ["warn_at", "level2_after", "level3_after", "escalation_team"]}),
    ]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        sla.forget_policies()  # new tickets take the change at once (other processes within 30 s)
        if form.has_changed() or any(formset.has_changed() for formset in formsets):
            sla_reschedule.queue_policy_reschedule()
            self.message_user(request, RETARGET_QUEUED, messages.INFO)


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ["ticket", "kind", "level", "from_team", "to_team", "reason", "created_at", "returned_at"]
    list_filter = ["kind", "level", "to_team", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["ticket", "from_team", "to_team"]
    search_fields = ["reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Escalation]:
        return super().get_queryset(request).filter(ticket__in=visible_to(request.user).values("pk"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # escalations come from the SLA plan or the ticket's "Escalate" action

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SlaStateFilter(admin.SimpleListFilter):
    title = _("SLA")
    parameter_name = "sla"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("breached", _("Breached")), ("warning", _("Close to breaching")), ("ok", _("On track"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        now = timezone.now()
        running = SlaClock.objects.filter(RUNNING, ticket=OuterRef("pk"))
        if self.value() == "breached":
            return queryset.filter(Exists(running.filter(due_at__lte=now)))
        if self.value() == "warning":
            return queryset.filter(Exists(running.filter(due_at__gt=now, warn_at__lte=now)) | Exists(
                running.filter(due_at__gt=now, warned_at__isnull=False)
            )).exclude(Exists(running.filter(due_at__lte=now)))
        if self.value() == "ok":
            return queryset.filter(Exists(running)).exclude(Exists(running.filter(Q(due_at__lte=now) | Q(warn_at__lte=now))))
        return queryset


def with_next_due(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Each ticket's most urgent running clock: its due time, warning time and target."""
    soonest = SlaClock.objects.filter(RUNNING, ticket=OuterRef("pk")).order_by("due_at")
    return queryset.annotate(
        sla_due_at=Subquery(soonest.values("due_at")[:1]),
        sla_warn_at=Subquery(soonest.values("warn_at")[:1]),
        sla_metric=Subquery(soonest.values("metric")[:1]),
    )


@admin.display(description=_("SLA"), ordering="sla_due_at")
def sla_countdown(ticket: Ticket) -> str:
    due = getattr(ticket, "sla_due_at", None)
    if due is None:
        return "—"
    now = timezone.now()
    left = due - now
    warn = getattr(ticket, "sla_warn_at", None)
    state = "breached" if left <= timedelta() else ("warning" if warn is not None and warn <= now else "ok")
    return format_html(
        '<span class="sla sla-{}" title="{}">{}</span>', state, timezone.localtime(due).strftime("%Y-%m-%d %H:%M:%S"),
        _format_left(left),
    )


def _format_left(left: timedelta) -> str:
    seconds = int(abs(left.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"−{text}" if left <= timedelta() else text
