"""The supervisor's live view in the admin, under the tickets: /admin/tickets/ticket/live/ and
its data, live/data.json (TicketAdmin.get_urls adds them, as the QA report hangs off reviews)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .live import TeamLive, as_json, live_view, may_watch
from .models import Ticket

REFRESH_SECONDS = 10


def live_page(request: HttpRequest) -> HttpResponse:
    """The page: rendered in full by the server, then refreshed by tickets/live_view.js."""
    if not may_watch(request.user):
        raise PermissionDenied
    view = live_view(request.user, timezone.now())
    context = {
        **admin.site.each_context(request),
        "title": _("Live view"),
        "view": view,
        "teams": [_shown(team) for team in view.teams],
        "data_url": reverse("admin:live-data"),
        "tickets_url": reverse("admin:tickets_ticket_changelist"),
        "refresh_seconds": REFRESH_SECONDS,
        "opts": Ticket._meta,
    }
    return TemplateResponse(request, "admin/tickets/live_view.html", context)


def clock(seconds: int | None) -> str:
    """A duration as h:mm:ss or m:ss, "—" for none; tickets/live_view.js formats the same way."""
    if seconds is None:
        return "—"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _shown(team: TeamLive) -> dict[str, Any]:
    return {
        **vars(team),
        "oldest_queued": clock(team.oldest_queued_seconds),
        "frt_mean": clock(team.frt_mean_seconds),
        "frt_median": clock(team.frt_median_seconds),
        "agents": [
            {**vars(agent), "full": agent.load >= agent.capacity, "oldest_waiting": clock(agent.oldest_waiting_seconds)}
            for agent in team.agents
        ],
    }


def live_data(request: HttpRequest) -> JsonResponse:
    """The same figures as JSON, for the page's refresh (admin_view already marks it never cached)."""
    if not may_watch(request.user):
        raise PermissionDenied
    return JsonResponse(as_json(live_view(request.user, timezone.now())))


def live_urls() -> list[URLPattern]:
    return [
        path("live/", admin.site.admin_view(live_page), name="live-view"),
        path("live/data.json", admin.site.admin_view(live_data), name="live-data"),
    ]
