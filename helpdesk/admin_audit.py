"""The audit trail in the admin, for administrators only: /admin/helpdesk/apikey/audit/ (the
page, a page at a time with an "older" cursor) and audit/export.csv (the same filter as a file
for auditors, at most EXPORT_LIMIT rows). The data is helpdesk.audit.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from simple_history.admin import SimpleHistoryAdmin

from tickets.report_exports import safe_text

from . import audit
from .models import ApiKey
from .roles import is_administrator

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)  # as the reports


class AuditFilterForm(forms.Form):
    """The filters; "from" is a Python keyword, so the fields are made in __init__."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.fields["user"] = forms.CharField(label=gettext_lazy("user"), required=False, max_length=150)
        self.fields["api_key"] = forms.ModelChoiceField(
            label=gettext_lazy("API key"), queryset=ApiKey.objects.order_by("name", "prefix"), to_field_name="prefix",
            required=False, empty_label=_("any key or none"),
        )
        self.fields["type"] = forms.ChoiceField(
            label=gettext_lazy("record type"), required=False,
            choices=[("", _("all records")), *sorted(
                ((model._meta.label_lower, str(model._meta.verbose_name)) for model in audit.record_types()),
                key=lambda choice: choice[1],
            )],
        )
        self.fields["action"] = forms.ChoiceField(
            label=gettext_lazy("action"), required=False, choices=[("", _("all actions")), *audit.ACTIONS.items()]
        )
        self.fields["from"] = forms.DateField(
            label=gettext_lazy("from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            label=gettext_lazy("to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["object"] = forms.IntegerField(
            label=gettext_lazy("object id"), required=False, min_value=1, max_value=2**63 - 1
        )
        # Not shown: the form's own submit starts again from the newest.
        self.fields["before"] = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_user(self) -> int | None:
        username = self.cleaned_data["user"].strip()
        if not username:
            return None
        found = get_user_model()._default_manager.filter(username=username).values_list("pk", flat=True).first()
        if found is None:
            raise forms.ValidationError(_("No user is named “%(name)s”.") % {"name": username})
        return found

    def clean_before(self) -> audit.Cursor | None:
        text = self.cleaned_data["before"]
        if not text:
            return None
        try:
            return audit.Cursor.parse(text)
        except ValueError:
            raise forms.ValidationError(_("The link to older changes is broken; start again from the newest.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("from", "to"):
            day = data.get(name)
            if day and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(name, _("Give a day between 2000 and 2199."))
                data.pop(name, None)
        if data.get("from") and data.get("to") and data["from"] > data["to"]:
            self.add_error("to", _("The last day comes before the first."))
        return data

    def filters(self) -> audit.Filters:
        """The filters, with the days as instants in the site's time zone (the last day included)."""
        data = self.cleaned_data
        zone = timezone.get_default_timezone()

        def start_of(day: date | None) -> datetime | None:
            return datetime.combine(day, time.min, tzinfo=zone) if day else None

        return audit.Filters(
            user=data.get("user"),
            api_key=data["api_key"].pk if data.get("api_key") else None,
            record_type=data.get("type") or None,
            action=data.get("action") or None,
            since=start_of(data.get("from")),
            until=start_of(data["to"] + timedelta(days=1)) if data.get("to") else None,
            object_id=data.get("object"),
        )

    def errors_shown(self) -> list[str]:
        """Errors of the hidden cursor, which has no place on the page of its own."""
        return [*self.non_field_errors(), *self.errors.get("before", [])]


def _form(request: HttpRequest) -> AuditFilterForm:
    if not is_administrator(request.user):
        raise PermissionDenied
    return AuditFilterForm(request.GET)


def _query(request: HttpRequest, **changes: Any) -> str:
    data = request.GET.copy()
    for name, value in changes.items():
        data.pop(name, None)
        if value is not None:
            data[name] = value
    return data.urlencode()


def _link(entry: audit.Entry) -> str | None:
    """The object's history page (or change page, for an admin without history), if any."""
    model = entry.model
    if model is None or not entry.object_id or entry.action == audit.DELETED or not admin.site.is_registered(model):
        return None
    opts = model._meta
    page = "history" if isinstance(admin.site.get_model_admin(model), SimpleHistoryAdmin) else "change"
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[quote(entry.object_id)])
    except NoReverseMatch:
        return None


def audit_view(request: HttpRequest) -> HttpResponse:
    """The page: the filter form, one page of changes, newest first, and the "older" link."""
    form = _form(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Audit trail"),
        "form": form,
        "entries": None,
    }
    if form.is_valid():
        entries, older = audit.page(form.filters(), before=form.cleaned_data["before"], size=PAGE_SIZE)
        for entry in entries:
            entry.url = _link(entry)
        context.update(
            entries=entries,
            older_url=f"?{_query(request, before=str(older))}" if older is not None else None,
            newest_url=f"?{_query(request, before=None)}" if form.cleaned_data["before"] else None,
            csv_url=f"{reverse('admin:audit-export-csv')}?{_query(request, before=None)}",
        )
    return TemplateResponse(request, "admin/helpdesk/audit.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(filters: audit.Filters, language: str) -> Iterator[str]:
    """The export, a line at a time, in the language of the request that asked for it."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    zone = timezone.get_default_timezone()
    with translation.override(language):
        yield "\ufeff" + writer.writerow([
            _("Time"), _("User"), _("API key"), _("API key prefix"), _("Record type"), _("Object id"),
            _("Object"), _("Action"), _("Reason"), _("Source"), _("Row id"),
        ])  # the byte order mark lets Excel read the Chinese right
        written = 0
        for batch in audit.batches(filters, limit=EXPORT_LIMIT):
            for entry in batch:
                if written == EXPORT_LIMIT:
                    yield writer.writerow([safe_text(_(
                        "Only the newest %(count)d changes are in this file: narrow the filter for the rest."
                    ) % {"count": EXPORT_LIMIT})])
                    return
                written += 1
                yield writer.writerow([safe_text(value) for value in (
                    entry.at.astimezone(zone).isoformat(),
                    entry.user.get_username() if entry.user is not None else "",
                    entry.api_key.name if entry.api_key is not None else "",
                    entry.api_key.prefix if entry.api_key is not None else "",
                    entry.record_label, entry.object_id, entry.object, entry.action_label, entry.reason,
                    entry.source, entry.id,
                )])


def export_csv(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if not form.is_valid():  # show the form's errors on the page
        return HttpResponseRedirect(f"{reverse('admin:audit')}?{request.GET.urlencode()}")
    response = StreamingHttpResponse(
        _csv_lines(form.filters(), translation.get_language()), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit_{stamp}.csv"'
    return response


def audit_urls() -> list[URLPattern]:
    return [
        path("audit/", admin.site.admin_view(audit_view), name="audit"),
        path("audit/export.csv", admin.site.admin_view(export_csv), name="audit-export-csv"),
    ]


def link_from_index(site: admin.AdminSite) -> None:
    """The index page links the trail for administrators. The site is Django's own, so its
    index view is wrapped to add the link, as TicketAdmin adds its reports link."""
    index = site.index

    def index_with_audit(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if is_administrator(request.user):
            extra_context = {**(extra_context or {}), "audit_url": reverse("admin:audit")}
        return index(request, extra_context)

    site.index = index_with_audit  # type: ignore[method-assign]
    site.index_template = "admin/helpdesk/index.html"

