"""The gap report page: the searches that found nothing and the busy ticket categories without
a good article, the blind spots to write for first (knowledge.queries.gap_report)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from .forms import GapReportForm
from .models import Article
from .queries import gap_report


def gap_report_view(request: HttpRequest, admin_site: Any) -> HttpResponse:
    from .admin import may_see_gap_report

    if not may_see_gap_report(request.user):
        raise PermissionDenied
    form = GapReportForm(request.GET or {"days": 30})
    context = {
        **admin_site.each_context(request),
        "title": _("Knowledge gaps"),
        "form": form,
        "opts": Article._meta,
    }
    status = 200
    if form.is_valid():
        context["report"] = gap_report(days=form.cleaned_data["days"], source=form.cleaned_data["source"])
    else:
        status = 400
    return TemplateResponse(request, "admin/knowledge/gap_report.html", context, status=status)
