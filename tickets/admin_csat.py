"""Satisfaction ratings, surveys and the complaint follow-up in the admin.

Ratings and surveys are records: read-only. A complaint's lead records the root cause and
the outcome and closes it; the writes go through tickets.csat, never ModelAdmin.save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin
from helpdesk.pii import text_shown_to, texts_shown_to

from . import csat
from .models import Complaint, Csat, CsatSurvey
from .queries import visible_to


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.display(description=_("ticket"), ordering="ticket_id")
def ticket_link(obj: Any) -> str:
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:tickets_ticket_change", args=[obj.ticket_id]), obj.ticket.reference
    )


COMMENT = "comment"  # in the lists of fields below: the customer's comment, as the user may read it


def _comment_column(request: HttpRequest) -> Callable[[Any], str]:
    """The customer's comment on a rating (or a complaint's rating) as the user may read it
    (helpdesk.pii.texts_shown_to: customers type their phone numbers here too).

    Made once per request, since it needs the user and the fields and read-only fields must name
    the same object. A list page reads all its comments at once (ShownCommentsChangeList)."""
    column = getattr(request, "_comment_column", None)
    if column is None:
        user = request.user

        @admin.display(description=_("customer's comment"))
        def column(obj: Any) -> str:
            shown = getattr(obj, "shown_comment", None)
            if shown is None:
                rating = obj if isinstance(obj, Csat) else obj.csat
                shown = text_shown_to(user, obj.ticket.customer_id)(rating.comment)
            return shown or "—"

        request._comment_column = column  # type: ignore[attr-defined]
    return column


def _with_comment(request: HttpRequest, names: list[Any]) -> list[Any]:
    return [_comment_column(request) if name == COMMENT else name for name in names]


class ShownCommentsChangeList(ChangeList):
    """Reads the page's comments as the user may see them, for all its customers at once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        ratings = list(self.result_list)  # the page's rows, kept by the queryset for the template
        shown = texts_shown_to(request.user, {rating.ticket.customer_id for rating in ratings})
        for rating in ratings:
            rating.shown_comment = shown(rating.ticket.customer_id, rating.comment)


@admin.register(Csat)
class CsatAdmin(ReadOnlyAdmin):
    list_display = [ticket_link, "stars_shown", "source", "team", "agent", "rated_at", COMMENT]
    list_filter = ["stars", "source", "team"]
    list_select_related = ["ticket", "team", "agent"]
    date_hierarchy = "rated_at"
    show_full_result_count = False
    fields = [ticket_link, "stars", COMMENT, "source", "rated_at", "team", "agent"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Csat]:
        return super().get_queryset(request).filter(pk__in=csat.ratings_visible_to(request.user).values("pk"))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ShownCommentsChangeList

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return _with_comment(request, list(self.list_display))

    def get_fields(self, request: HttpRequest, obj: Csat | None = None) -> list[Any]:
        return _with_comment(request, list(self.fields))

    def get_readonly_fields(self, request: HttpRequest, obj: Csat | None = None) -> list[Any]:
        return self.get_fields(request, obj)

    @admin.display(description=_("stars"), ordering="stars")
    def stars_shown(self, rating: Csat) -> str:
        return f"{'★' * rating.stars}{'☆' * (5 - rating.stars)}"


@admin.register(CsatSurvey)
class CsatSurveyAdmin(ReadOnlyAdmin):
    list_display = [ticket_link, "sent_at", "expires_at", "used_at"]
    list_select_related = ["ticket"]
    date_hierarchy = "sent_at"
    show_full_result_count = False
    fields = [ticket_link, "sent_at", "expires_at", "used_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[CsatSurvey]:
        return super().get_queryset(request).filter(ticket__in=visible_to(request.user).values("pk"))


class ComplaintForm(forms.ModelForm):
    close = forms.BooleanField(
        label=_("Close the complaint"), required=False,
        help_text=_("The follow-up is done: root cause and outcome are recorded."),
    )

    class Meta:
        model = Complaint
        fields = ["root_cause", "outcome"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("close") and "root_cause" in self.fields:
            if not data.get("root_cause"):
                self.add_error("root_cause", _("Choose the root cause before closing."))
            if not (data.get("outcome") or "").strip():
                self.add_error("outcome", _("Describe the outcome before closing."))
        return data


@admin.register(Complaint)
class ComplaintAdmin(AuditedAdmin):
    form = ComplaintForm
    list_display = [ticket_link, "stars", "team", "status", "root_cause", "created_at", "closed_at"]
    list_filter = ["status", "root_cause", "team"]
    list_select_related = ["ticket", "team", "csat"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    info_fields = [ticket_link, "stars", COMMENT, "team", "status", "created_at", "closed_at", "closed_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Complaint]:
        visible = csat.complaints_visible_to(request.user).values("pk")
        return super().get_queryset(request).filter(pk__in=visible).select_related("ticket", "team", "csat", "closed_by")

    def get_fields(self, request: HttpRequest, obj: Complaint | None = None) -> list[Any]:
        editable = [] if obj is not None and obj.status == Complaint.Status.CLOSED else ["root_cause", "outcome", "close"]
        return [*_with_comment(request, self.info_fields), *editable]

    def get_readonly_fields(self, request: HttpRequest, obj: Complaint | None = None) -> list[Any]:
        if obj is not None and obj.status == Complaint.Status.CLOSED:
            return [*_with_comment(request, self.info_fields), "root_cause", "outcome"]
        return _with_comment(request, self.info_fields)

    def get_fieldsets(self, request: HttpRequest, obj: Complaint | None = None) -> list[Any]:
        fields = self.get_fields(request, obj)
        closed = obj is not None and obj.status == Complaint.Status.CLOSED
        info = fields if closed else fields[: len(self.info_fields)]
        sets: list[Any] = [(None, {"fields": info})]
        if not closed:
            sets.append((_("Follow-up"), {"fields": fields[len(self.info_fields):]}))
        return sets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # opened by a rating of 1 or 2 stars

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Complaint | None = None) -> bool:
        # A closed complaint is a record: shown, not saved again (a second lead's stale form gets a 403).
        if obj is not None and obj.status == Complaint.Status.CLOSED:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Complaint, form: Any, change: bool) -> None:
        data = form.cleaned_data
        service = csat.close_complaint if data.get("close") else csat.record_complaint_findings
        service(complaint=obj, root_cause=data.get("root_cause", ""), outcome=data.get("outcome", ""), actor=request.user)

    @admin.display(description=_("stars"), ordering="csat__stars")
    def stars(self, complaint: Complaint) -> str:
        return "★" * complaint.csat.stars
