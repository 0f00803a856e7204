"""The operations dashboard in the admin: /admin/tickets/ticket/reports/ (the page) and
reports/export.csv, reports/export.xlsx (the same numbers as files, for the same query string).

Who sees what is reports.allowed_filters(): roles that see across teams everything, a team
lead their own teams; anyone else gets 403. The numbers are reports.summary(), shaped by
tickets/report_exports.py, so the page, the files and the emailed reports agree.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.errors import DomainError
from helpdesk.models import Channel, Team
from helpdesk.queries import agents_visible_to
from helpdesk.roles import sees_everything

from . import report_exports, reports
from .charts import bar_chart
from .models import Category, Ticket

DEFAULT_DAYS = 30
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)  # as the summary API


class ReportFilterForm(forms.Form):
    """The range and filters; "from" is a Python keyword, so the fields are made in __init__."""

    def __init__(self, data: QueryDict | dict[str, Any], *, user: Any) -> None:
        super().__init__(data)
        teams = Team.objects.all() if sees_everything(user) else Team.objects.filter(agents__user=user)
        self.fields["from"] = forms.DateField(label=gettext_lazy("from"), widget=forms.DateInput(attrs={"type": "date"}))
        self.fields["to"] = forms.DateField(label=gettext_lazy("to"), widget=forms.DateInput(attrs={"type": "date"}))
        self.fields["team"] = forms.ModelChoiceField(
            label=gettext_lazy("team"), queryset=teams.order_by("name"), required=False,
            empty_label=_("all teams") if sees_everything(user) else "---------",
        )
        self.fields["channel"] = forms.ChoiceField(
            label=gettext_lazy("channel"), choices=[("", _("all channels")), *Channel.choices], required=False
        )
        self.fields["agent"] = forms.ModelChoiceField(
            label=gettext_lazy("agent"), queryset=agents_visible_to(user).order_by("display_name"), required=False,
            empty_label=_("all agents"),
        )
        self.fields["category"] = forms.ModelChoiceField(
            label=gettext_lazy("category"), queryset=Category.objects.order_by("code"), to_field_name="code",
            required=False, empty_label=_("all categories"),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("from", "to"):
            day = data.get(name)
            if day and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(name, _("Give a day between 2000 and 2199."))
                data.pop(name, None)
        if data.get("from") and data.get("to"):
            try:
                reports.period(data["from"], data["to"])
            except DomainError as refused:
                self.add_error(refused.field or None, refused.message)
        return data

    def filters(self) -> reports.Filters:
        data = self.cleaned_data
        return reports.Filters(
            team=data["team"].pk if data.get("team") else None,
            agent=data["agent"].pk if data.get("agent") else None,
            channel=data.get("channel") or None,
            category=data["category"].pk if data.get("category") else None,
        )


def default_range(today: date) -> tuple[date, date]:
    """The last 30 days up to yesterday (`today` in TIME_ZONE)."""
    end = today - timedelta(days=1)
    return end - timedelta(days=DEFAULT_DAYS - 1), end


def _bound_form(request: HttpRequest) -> ReportFilterForm:
    start, end = default_range(timezone.localdate())
    data = request.GET.copy()
    for name, day in (("from", start), ("to", end)):
        if not data.get(name):
            data[name] = day.isoformat()
    return ReportFilterForm(data, user=request.user)


def may_see_reports(user: Any) -> bool:
    """Team leads and roles that see across teams (also for the change list's "Reports" link)."""
    try:
        reports.allowed_filters(user, reports.Filters())
    except DomainError as refused:
        return refused.code != "no_reports"  # "forbidden_team": a lead of several teams must pick one
    return True


def _report(request: HttpRequest) -> tuple[ReportFilterForm, reports.Filters | None, dict[str, Any] | None]:
    """The form, and when it is valid and allowed, the filters applied and the summary."""
    if not may_see_reports(request.user):
        raise PermissionDenied
    form = _bound_form(request)
    if not form.is_valid():
        return form, None, None
    try:
        filters = reports.allowed_filters(request.user, form.filters())
    except DomainError as refused:
        if refused.field is None:
            raise PermissionDenied from refused
        form.add_error(refused.field, refused.message)
        return form, None, None
    data = form.cleaned_data
    return form, filters, reports.summary(start=data["from"], end=data["to"], filters=filters)


def _scope(form: ReportFilterForm, filters: reports.Filters) -> list[tuple[str, str]]:
    """The filters applied, as (label, name) for the page and the files; a lead's own team
    counts even when the form left the team empty."""
    data = form.cleaned_data
    team = data.get("team")
    if filters.team is not None and (team is None or team.pk != filters.team):
        team = Team.objects.filter(pk=filters.team).first()
    shown = [
        (_("Team"), team.name if team else _("all teams")),
        (_("Channel"), Channel(filters.channel).label if filters.channel else _("all channels")),
        (_("Agent"), data["agent"].display_name if data.get("agent") else _("all agents")),
        (_("Category"), data["category"].name if data.get("category") else _("all categories")),
    ]
    return [(label, str(value)) for label, value in shown]


def _query(form: ReportFilterForm, filters: reports.Filters) -> str:
    """The query string of what is shown, for the export links (explicit dates and team)."""
    data = form.cleaned_data
    wanted = {
        "from": data["from"].isoformat(), "to": data["to"].isoformat(), "team": filters.team,
        "channel": filters.channel, "agent": filters.agent,
        "category": data["category"].code if data.get("category") else None,
    }
    return urlencode({name: value for name, value in wanted.items() if value not in (None, "")})


def _charts(summary: dict[str, Any], sections: dict[str, report_exports.Section]) -> list[dict[str, Any]]:
    def items(key: str) -> list[tuple[str, float]]:
        return [(line.label, line.value) for line in sections[key].lines]

    charts = [
        ("hourly", _("Incoming tickets by hour of day"), items("hourly"), False),
        ("weekdays", _("Incoming tickets by weekday"), items("weekdays"), False),
        ("channels", _("Channel mix"), items("channels"), True),
        ("top-categories", _("Top categories"), items("top_categories"), True),
        ("rising-categories", _("Rising categories (tickets created)"), items("rising_categories"), True),
    ]
    return [
        {"title": title, "empty": not data,
         "svg": bar_chart(data, chart_id=f"chart-{key}", title=title, horizontal=horizontal)}
        for key, title, data, horizontal in charts
    ]


def _tile(line: report_exports.Line) -> dict[str, Any]:
    def tone(change: float | None) -> str:
        if not change or line.lower_is_better is None:
            return ""
        return "worse" if (change > 0) == line.lower_is_better else "better"

    return {
        "label": line.label,
        "value": report_exports.shown_value(line.value, line.kind),
        "previous": report_exports.shown_value(line.previous, line.kind),
        "year_ago": report_exports.shown_value(line.year_ago, line.kind),
        "change_previous": report_exports.shown_change(line.change_previous),
        "change_year_ago": report_exports.shown_change(line.change_year_ago),
        "tone_previous": tone(line.change_previous),
        "tone_year_ago": tone(line.change_year_ago),
    }


def dashboard(request: HttpRequest) -> HttpResponse:
    """The page: the filter form, the headline tiles, the charts and the tables."""
    form, filters, summary = _report(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Operations reports"),
        "form": form,
        "summary": summary,
        "opts": Ticket._meta,
        "tickets_url": reverse("admin:tickets_ticket_changelist"),
        "max_days": reports.MAX_DAYS,
    }
    if summary is not None and filters is not None:
        sections = {section.key: section for section in report_exports.sections(summary)}
        query = _query(form, filters)
        context.update(
            scope=_scope(form, filters),
            tiles=[_tile(line) for line in sections["headline"].lines],
            charts=_charts(summary, sections),
            tables=[
                {"title": sections[key].title, "lines": [_tile(line) for line in sections[key].lines]}
                for key in ("channels", "weekdays", "hourly", "top_categories", "rising_categories")
            ],
            csv_url=f"{reverse('admin:reports-export-csv')}?{query}",
            xlsx_url=f"{reverse('admin:reports-export-xlsx')}?{query}",
        )
    return TemplateResponse(request, "admin/tickets/reports.html", context)


def _export(request: HttpRequest, extension: str) -> HttpResponse:
    form, filters, summary = _report(request)
    if summary is None or filters is None:  # show the form's errors on the page
        return HttpResponseRedirect(f"{reverse('admin:reports-dashboard')}?{request.GET.urlencode()}")
    scope = _scope(form, filters)
    if extension == "csv":
        body, content_type = report_exports.to_csv(summary, scope=scope), "text/csv; charset=utf-8"
    else:
        body = report_exports.to_xlsx(summary, scope=scope)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = HttpResponse(body, content_type=content_type)
    period = summary["period"]
    response["Content-Disposition"] = f'attachment; filename="report_{period["from"]}_{period["to"]}.{extension}"'
    return response


def export_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, "csv")


def export_xlsx(request: HttpRequest) -> HttpResponse:
    return _export(request, "xlsx")


def report_urls() -> list[URLPattern]:
    return [
        path("reports/", admin.site.admin_view(dashboard), name="reports-dashboard"),
        path("reports/export.csv", admin.site.admin_view(export_csv), name="reports-export-csv"),
        path("reports/export.xlsx", admin.site.admin_view(export_xlsx), name="reports-export-xlsx"),
    ]
