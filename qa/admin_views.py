"""QA admin pages: the scoring page (the conversation, customer details masked, beside the
scorecard) and the QA report."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import Team
from helpdesk.pii import shown_contact, text_shown_to
from tickets.queries import conversation

from .models import Review
from .queries import report_refusal, reviews_visible_to, score_report, training_needs
from .services import submit_review


def score_view(request: HttpRequest, object_id: str, admin_site: Any) -> HttpResponse:
    review = get_object_or_404(
        reviews_visible_to(request.user).select_related("ticket__customer", "agent", "scorecard_version__scorecard"),
        pk=object_id,
    )
    if review.inspector_id != request.user.pk or not request.user.has_perm("qa.change_review"):
        raise PermissionDenied
    criteria = list(review.scorecard_version.criteria.all())
    entered: dict[str, tuple[str, str]] = {}
    error = None
    if request.method == "POST":
        scores, entered, error = _read_scores(request, criteria)
        if error is None:
            try:
                submit_review(
                    review=review, scores=scores, strengths=request.POST.get("strengths", ""),
                    shortcomings=request.POST.get("shortcomings", ""), coaching=request.POST.get("coaching", ""),
                    actor=request.user,
                )
            except DomainError as refused:
                error = refused.message
            else:
                review.refresh_from_db()
                messages.success(request, _("Review submitted: %s points.") % review.score)
                return HttpResponseRedirect(reverse("admin:qa_review_changelist") + "?mine=1")
    shown = text_shown_to(request.user, review.ticket.customer_id)
    thread = [{"message": m, "body": shown(m.body)} for m in conversation(review.ticket).select_related("author_agent")]
    context = {
        **admin_site.each_context(request),
        "title": _("Score %(ticket)s") % {"ticket": review.ticket.reference},
        "review": review,
        "subject": shown(review.ticket.subject),  # customers write subjects too
        "customer": shown_contact(review.ticket.customer, request.user),
        "thread": thread,
        "sections": [(name, list(items)) for name, items in groupby(criteria, key=lambda c: c.section)],
        "entered": entered,
        "error": error,
        "post": request.POST if request.method == "POST" else {},
        "opts": Review._meta,
    }
    return TemplateResponse(request, "admin/qa/review/score.html", context)


def _read_scores(request: HttpRequest, criteria: list) -> tuple[dict, dict, str | None]:
    """The form's scores, everything typed (to show again), and the first problem, if any."""
    scores, entered, error = {}, {}, None
    for criterion in criteria:
        raw = request.POST.get(f"points-{criterion.code}", "")
        comment = request.POST.get(f"comment-{criterion.code}", "")
        entered[criterion.code] = (raw, comment)
        if raw == "na":
            scores[criterion.code] = (None, comment)
        elif raw.isdigit():
            scores[criterion.code] = (int(raw), comment)
        elif error is None and raw == "":
            error = _("Score “%s” (or mark it N/A).") % criterion.title
        elif error is None:
            error = _("“%(title)s” takes 0 to %(max)d points.") % {"title": criterion.title, "max": criterion.max_points}
    return scores, entered, error


class ReportForm(forms.Form):
    start = forms.DateField(label=_("from"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("to"), widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(label=_("group by"), choices=[("agent", _("agent")), ("team", _("team")), ("criterion", _("criterion"))])
    team = forms.ModelChoiceField(label=_("team"), queryset=Team.objects.all(), required=False)

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and not (date(2000, 1, 1) <= start <= end <= date(2199, 12, 31) and (end - start).days <= 366):
            self.add_error("end", _("Give a period of at most a year, from before to after."))
        return data


def report_view(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """QA scores over a period, with intervals and trend, and the training needs list."""
    today = timezone.localdate()
    form = ReportForm(request.GET or {"start": today.replace(day=1), "end": today, "by": "agent"})
    context = {**admin_site.each_context(request), "title": _("QA report"), "form": form, "opts": Review._meta}
    if form.is_valid():
        data = form.cleaned_data
        team = data["team"].pk if data["team"] else None
        refusal = report_refusal(request.user, team)
        if refusal:
            raise PermissionDenied(refusal)
        context["rows"] = score_report(start=data["start"], end=data["end"], by=data["by"], team=team)
        context["needs"] = training_needs(start=data["start"], end=data["end"], team=team)
    return TemplateResponse(request, "admin/qa/review/report.html", context)
