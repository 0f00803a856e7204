"""QA in the admin: scorecards, sampling scopes with a "draw now" action, sample runs, reviews."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin
from helpdesk.errors import DomainError
from tickets.models import Ticket

from .admin_views import report_view, score_view
from .models import (
    Calibration,
    Criterion,
    Dispute,
    Review,
    SampleRun,
    SampleScope,
    Scorecard,
    ScorecardVersion,
)
from .queries import calibration_report, overdue_disputes, reviews_visible_to
from .queries import inspectors as inspectors_queryset
from .services import (
    draw_daily_sample,
    new_scorecard_version,
    resolve_dispute,
    start_calibration,
)


class CriterionInline(admin.TabularInline):
    """Editable only while no review uses the version: a version in use is history."""

    model = Criterion
    extra = 0
    fields = ["position", "section", "code", "title", "guidance", "weight", "max_points", "allows_na", "critical"]

    def _in_use(self, obj: ScorecardVersion | None) -> bool:
        return obj is not None and obj.reviews.exists()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.fields if self._in_use(obj) else []

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._in_use(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._in_use(obj) and super().has_delete_permission(request, obj)


@admin.register(ScorecardVersion)
class ScorecardVersionAdmin(admin.ModelAdmin):
    list_display = ["scorecard", "number", "created_at", "in_use"]
    readonly_fields = ["scorecard", "number", "created_at"]
    inlines = [CriterionInline]

    @admin.display(description=_("in use"), boolean=True)
    def in_use(self, version: ScorecardVersion) -> bool:
        return version.reviews.exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by the scorecard's "new version" action


@admin.register(Scorecard)
class ScorecardAdmin(AuditedAdmin):
    list_display = ["name", "slug", "is_active"]
    actions = ["new_version"]

    @admin.action(description=_("Make a new version to edit"), permissions=["change"])
    def new_version(self, request: HttpRequest, queryset: QuerySet[Scorecard]) -> None:
        for scorecard in queryset:
            version = new_scorecard_version(scorecard=scorecard)
            self.message_user(request, _("%(version)s made: edit its criteria; new samples use it.") % {"version": version})


@admin.register(SampleScope)
class SampleScopeAdmin(AuditedAdmin):
    list_display = ["__str__", "rate", "scorecard", "is_active"]
    list_select_related = ["team", "scorecard"]
    actions = ["draw_yesterday"]

    @admin.action(description=_("Draw yesterday's sample now"), permissions=["change"])
    def draw_yesterday(self, request: HttpRequest, queryset: QuerySet[SampleScope]) -> None:
        day = timezone.localdate() - timedelta(days=1)
        for scope in queryset:
            try:
                run, drawn = draw_daily_sample(day=day, scope=scope, trigger=SampleRun.Trigger.ADMIN, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{scope}: {error.message}", messages.ERROR)
                continue
            text = _("%(scope)s: %(count)d of %(population)d conversations drawn.") if drawn else _(
                "%(scope)s: already drawn (%(count)d of %(population)d)."
            )
            self.message_user(request, text % {"scope": scope, "count": run.reviews.count(), "population": run.population})


@admin.register(SampleRun)
class SampleRunAdmin(admin.ModelAdmin):
    list_display = ["day", "scope", "rate", "population", "seed", "trigger", "drawn_by", "created_at"]
    list_filter = ["trigger", ("day", admin.DateFieldListFilter)]
    list_select_related = ["scope__team", "drawn_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # drawn by the schedule, the command or the scopes' action

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MineFilter(admin.SimpleListFilter):
    title = _("queue")
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("My QA queue"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Review]) -> QuerySet[Review]:
        if self.value() == "1":
            return queryset.filter(inspector=request.user, status=Review.Status.ASSIGNED)
        return queryset


@admin.register(Review)
class ReviewAdmin(AuditedAdmin):
    list_display = ["ticket", "agent", "inspector", "status", "score", "assigned_at", "submitted_at", "score_link"]
    list_filter = [MineFilter, "status", ("assigned_at", admin.DateFieldListFilter)]
    list_select_related = ["ticket", "agent", "inspector"]
    readonly_fields = ["run", "ticket", "agent", "scorecard_version", "score", "assigned_at", "submitted_at", "status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Review]:
        return reviews_visible_to(request.user)

    @admin.display(description=_("score it"))
    def score_link(self, review: Review) -> str:
        if review.status != Review.Status.ASSIGNED:
            return "—"
        return format_html('<a class="button" href="{}">{}</a>', reverse("admin:qa_review_score", args=[review.pk]), _("Score"))

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(lambda request, object_id: score_view(request, object_id, self.admin_site))
        report = self.admin_site.admin_view(lambda request: report_view(request, self.admin_site))
        return [
            path("report/", report, name="qa_review_report"),
            path("<path:object_id>/score/", view, name="qa_review_score"),
            *super().get_urls(),
        ]


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("Open longer than 3 business days"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
        if self.value() == "1":
            return queryset.filter(pk__in=overdue_disputes().values("pk"))
        return queryset


class UpholdForm(forms.Form):
    comment = forms.CharField(label=_("Explanation for the agent"), widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Dispute)
class DisputeAdmin(AuditedAdmin):
    list_display = ["review", "status", "reason", "opened_at", "original_score", "resolved_by", "resolved_at"]
    list_filter = [OverdueFilter, "status"]
    list_select_related = ["review__ticket", "review__agent", "resolved_by"]
    readonly_fields = ["review", "reason", "status", "opened_at", "original_score", "resolution", "resolved_at", "resolved_by"]
    actions = ["uphold"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dispute]:
        return super().get_queryset(request).filter(review__in=reviews_visible_to(request.user).values("pk"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Uphold the review…"), permissions=["change"])
    def uphold(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> Any:
        if "apply" in request.POST:
            form = UpholdForm(request.POST)
            if form.is_valid():
                for dispute in queryset:
                    try:
                        resolve_dispute(dispute=dispute, uphold=True, comment=form.cleaned_data["comment"], actor=request.user)
                    except DomainError as error:
                        self.message_user(request, f"{dispute}: {error.message}", messages.ERROR)
                return None
        else:
            form = UpholdForm()
        context = {
            **self.admin_site.each_context(request), "title": _("Uphold the review"), "form": form, "action": "uphold",
            "queryset": queryset[:100], "count": queryset.count(), "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/tickets/ticket/action_form.html", context)


class CalibrationForm(forms.ModelForm):
    tickets = forms.CharField(
        label=_("conversations"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Ticket references, separated by spaces or commas (T00000123 …)."),
    )
    inspectors = forms.ModelMultipleChoiceField(label=_("inspectors"), queryset=inspectors_queryset(), widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Calibration
        fields = ["name", "scorecard_version"]

    def clean_tickets(self) -> list[Ticket]:
        references = [r for r in self.cleaned_data["tickets"].replace(",", " ").split() if r]
        pks = [Ticket.pk_from_reference(r) for r in references]
        if None in pks:
            raise forms.ValidationError(_("“%s” is not a ticket reference.") % references[pks.index(None)])
        found = {t.pk: t for t in Ticket.objects.filter(pk__in=pks)}
        missing = [r for r, pk in zip(references, pks, strict=True) if pk not in found]
        if missing:
            raise forms.ValidationError(_("No ticket %s.") % missing[0])
        tickets = [found[pk] for pk in dict.fromkeys(pks)]
        unassigned = [t.reference for t in tickets if t.assignee_id is None]
        if unassigned:
            raise forms.ValidationError(_("%s has no agent to calibrate on.") % unassigned[0])
        return tickets

    def clean_inspectors(self) -> Any:
        inspectors = self.cleaned_data["inspectors"]
        if len(inspectors) < 2:
            raise forms.ValidationError(_("A calibration needs at least two inspectors."))
        return inspectors


@admin.register(Calibration)
class CalibrationAdmin(admin.ModelAdmin):
    list_display = ["name", "scorecard_version", "created_by", "created_at", "progress"]
    readonly_fields = ["report"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = CalibrationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name", "scorecard_version", "tickets", "inspectors"] if obj is None else ["name", "report"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else ["name", "report"]

    def save_model(self, request: HttpRequest, obj: Calibration, form: Any, change: bool) -> None:
        if change:
            return
        try:
            created = start_calibration(
                name=form.cleaned_data["name"], tickets=form.cleaned_data["tickets"],
                inspectors=list(form.cleaned_data["inspectors"]), version=form.cleaned_data["scorecard_version"],
                actor=request.user,
            )
        except DomainError as error:
            raise forms.ValidationError(error.message) from None
        obj.pk = created.pk

    @admin.display(description=_("submitted"))
    def progress(self, calibration: Calibration) -> str:
        done = calibration.reviews.filter(status=Review.Status.SUBMITTED).count()
        return f"{done} / {calibration.reviews.count()}"

    @admin.display(description=_("agreement report"))
    def report(self, calibration: Calibration) -> str:
        data = calibration_report(calibration)
        if not data["complete"]:
            return _("Blind until every inspector has submitted: %(submitted)d of %(expected)d.") % data
        criteria = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((c["title"], c["kappa"], "⚠" if c["low"] else "") for c in data["criteria"]),
        )
        people = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((i["username"], i["deviation"], "⚠" if i["far"] else "") for i in data["inspectors"]),
        )
        return format_html(
            "<table><tr><th>{}</th><th>Fleiss κ</th><th></th></tr>{}</table><br>"
            "<table><tr><th>{}</th><th>{}</th><th></th></tr>{}</table>",
            _("criterion"), criteria, _("inspector"), _("distance from the group (points)"), people,
        )
