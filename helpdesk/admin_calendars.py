"""Business calendars in the admin: weekly hours and dated exceptions inline, holiday upkeep."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .admin_history import AuditedAdmin
from .models import BusinessCalendar, CalendarDate, WorkingHours
from .queries import missing_holiday_years, read_schedule
from .services import record_calendar_change, sync_statutory_dates

RESCHEDULE_QUEUED = _(
    "The working time changed: the deadlines of running SLA clocks on this calendar are being recomputed "
    "in the background (time already used is kept)."
)


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0


class CalendarDateInline(admin.TabularInline):
    model = CalendarDate
    extra = 1
    fields = ["date", "kind", "name", "hours", "source"]
    readonly_fields = ["source"]
    ordering = ["-date"]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(AuditedAdmin):
    list_display = ["name", "slug", "time_zone", "holiday_region", "holiday_data"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [WorkingHoursInline, CalendarDateInline]
    actions = ["sync_statutory"]

    @admin.display(description=_("holiday data"))
    def holiday_data(self, calendar: BusinessCalendar) -> str:
        missing = missing_holiday_years(calendar, timezone.localdate())
        if not missing:
            return "✓"
        return _("missing for %s") % ", ".join(map(str, missing))

    @admin.action(description=_("Fill in statutory holidays and make-up workdays"), permissions=["change"])
    def sync_statutory(self, request: HttpRequest, queryset: QuerySet[BusinessCalendar]) -> None:
        changed = sum(sync_statutory_dates(calendar=calendar) for calendar in queryset)
        self.message_user(
            request, ngettext("%d date changed.", "%d dates changed.", changed) % changed, messages.SUCCESS
        )
        if changed:
            self.message_user(request, RESCHEDULE_QUEUED, messages.INFO)

    def save_model(self, request: HttpRequest, obj: BusinessCalendar, form: Any, change: bool) -> None:
        if change:  # the working time before this edit, read before anything is written
            request._calendar_before = read_schedule(BusinessCalendar.objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_calendar_before", None)
        if before is not None and record_calendar_change(calendar=form.instance, before=before):
            self.message_user(request, RESCHEDULE_QUEUED, messages.INFO)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        calendar = self.get_object(request, object_id)
        if calendar is not None and request.method == "GET":
            missing = missing_holiday_years(calendar, timezone.localdate())
            if missing:
                self.message_user(
                    request,
                    _(
                        "This calendar has no holidays entered for %(years)s: deadlines on those dates count "
                        "holidays as working days. Add them below, or upgrade chinesecalendar and fill them in."
                    )
                    % {"years": ", ".join(map(str, missing))},
                    messages.WARNING,
                )
        return super().change_view(request, object_id, form_url, extra_context)
