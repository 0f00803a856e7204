"""Canned replies (each team lead keeps their teams', administrators the global ones), and the
read-only lists of article feedback and searches."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin
from helpdesk.roles import is_administrator

from . import queries
from .forms import CannedReplyForm
from .models import ArticleFeedback, CannedReply, SearchLog


@admin.register(CannedReply)
class CannedReplyAdmin(AuditedAdmin):
    form = CannedReplyForm
    list_display = ["title", "shortcut", "scope", "language", "position", "is_active", "updated_at"]
    list_filter = ["is_active", "language", "team"]
    search_fields = ["title", "shortcut", "body"]
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[CannedReply]:
        return queries.canned_replies_visible_to(request.user)

    @admin.display(description=_("team"), ordering="team__name")
    def scope(self, reply: CannedReply) -> str:
        return reply.team.name if reply.team_id else _("(every team)")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and queries.manages_canned_reply(request.user, None)

    def has_change_permission(self, request: HttpRequest, obj: CannedReply | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or queries.manages_canned_reply(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: CannedReply | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or queries.manages_canned_reply(request.user, obj))

    def get_form(self, request: HttpRequest, obj: CannedReply | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        administrator = is_administrator(request.user)
        teams = None if administrator else queries.canned_reply_teams(request.user)

        class ScopedCannedReplyForm(form):
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, may_be_global=administrator, teams=teams, **kw)

        return ScopedCannedReplyForm

    def get_actions(self, request: HttpRequest) -> dict:
        # The bulk delete would reach replies of other teams selected across pages.
        actions = super().get_actions(request)
        if not is_administrator(request.user):
            actions.pop("delete_selected", None)
        return actions


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services only: listed, never added, changed or deleted here."""

    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ArticleFeedback)
class ArticleFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["article", "helpful", "source", "user", "comment", "created_at"]
    list_filter = ["helpful", "source", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["article", "user"]
    search_fields = ["article__title", "comment"]


class ZeroResultsFilter(admin.SimpleListFilter):
    title = _("results")
    parameter_name = "found"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("Nothing found")), ("yes", _("Something found"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SearchLog]) -> QuerySet[SearchLog]:
        if self.value() == "no":
            return queryset.filter(results=0)
        if self.value() == "yes":
            return queryset.filter(results__gt=0)
        return queryset


@admin.register(SearchLog)
class SearchLogAdmin(ReadOnlyAdmin):
    list_display = ["query", "normalized", "results", "source", "public", "user", "created_at"]
    list_filter = [ZeroResultsFilter, "source", "public", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["query", "normalized"]
