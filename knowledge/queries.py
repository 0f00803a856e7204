"""Read-side helpers for the knowledge base: who manages which canned replies, the category
tree as paths, and the gap report (the blind spots to write articles for first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from helpdesk.models import Team
from helpdesk.queries import agent_of
from helpdesk.roles import is_administrator, sees_everything
from tickets.models import Category

from .models import Article, CannedReply, KbCategory, SearchLog

GAP_ROWS = 20
GAP_MAX_DAYS = 366
PATH_SEPARATOR = " › "


# --- categories ------------------------------------------------------------------------


def category_paths() -> dict[int, str]:
    """Every article category as its path from the root ("设备使用 › 连接与配对"), in one query.
    The tree is small (tens of nodes), so it is read whole."""
    rows = {pk: (name, parent) for pk, name, parent in KbCategory.objects.values_list("pk", "name", "parent_id")}
    paths: dict[int, str] = {}

    def path(pk: int, seen: frozenset[int] = frozenset()) -> str:
        if pk in paths:
            return paths[pk]
        name, parent = rows[pk]
        # A cycle cannot be saved through the admin (KbCategoryForm), but guard anyway.
        if parent is None or parent not in rows or parent in seen:
            paths[pk] = name
        else:
            paths[pk] = path(parent, seen | {pk}) + PATH_SEPARATOR + name
        return paths[pk]

    for pk in rows:
        path(pk)
    return paths


def category_descendants(category: KbCategory) -> set[int]:
    """The ids of the category and everything under it: where it may not be moved."""
    children: dict[int | None, list[int]] = {}
    for pk, parent in KbCategory.objects.values_list("pk", "parent_id"):
        children.setdefault(parent, []).append(pk)
    found, todo = set(), [category.pk]
    while todo:
        pk = todo.pop()
        if pk not in found:
            found.add(pk)
            todo.extend(children.get(pk, []))
    return found


# --- canned replies ----------------------------------------------------------------------


def canned_reply_teams(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Any]:
    """The ids of the teams whose canned replies `user` sees and (holding the permission) manages."""
    agent = agent_of(user)
    if agent is None:
        return Team.objects.none().values("pk")
    return agent.teams.values("pk")


def canned_replies_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[CannedReply]:
    """Roles that work across teams see every canned reply; others the global ones and their
    teams' (inactive ones included, so a lead can switch them back on)."""
    replies = CannedReply.objects.select_related("team")
    if sees_everything(user):
        return replies
    return replies.filter(Q(team__isnull=True) | Q(team__in=canned_reply_teams(user)))


def manages_canned_reply(user: AbstractBaseUser | AnonymousUser, reply: CannedReply | None) -> bool:
    """Global replies are the administrators'; a team's are its leads' (anyone holding the
    change permission who is on that team). `reply` None asks about replies in general."""
    if is_administrator(user):
        return True
    if reply is None:
        return agent_of(user) is not None
    if reply.team_id is None:
        return False
    agent = agent_of(user)
    return agent is not None and agent.teams.filter(pk=reply.team_id).exists()


# --- the gap report ----------------------------------------------------------------------


def good_live_article(prefix: str = "") -> Q:
    """An article readers see and do not mostly reject: what covers a ticket category.
    `prefix` ("article__") puts the condition on a relation."""
    return (
        Q(**{f"{prefix}published_at__isnull": False})
        & ~Q(**{f"{prefix}status": Article.Status.ARCHIVED})
        & Q(**{f"{prefix}helpful_count__gte": F(f"{prefix}unhelpful_count")})
    )


def _since(days: int, now: datetime | None) -> datetime:
    if not 1 <= days <= GAP_MAX_DAYS:
        raise ValueError(f"days must be 1 to {GAP_MAX_DAYS}")
    return (now or timezone.now()) - timedelta(days=days)


def unanswered_searches(*, days: int = 30, now: datetime | None = None, source: str = "",
                        limit: int = GAP_ROWS) -> QuerySet[Any]:
    """The normalised queries searched most often in the last `days` days that found nothing:
    rows of normalized, searches, last_searched and example (one way it was typed)."""
    logs = SearchLog.objects.filter(created_at__gte=_since(days, now), results=0).exclude(normalized="")
    if source:
        logs = logs.filter(source=source)
    return (
        logs.values("normalized")
        .annotate(searches=Count("id"), last_searched=Max("created_at"), example=Max("query"))
        .order_by("-searches", "normalized")[:limit]
    )


def uncovered_categories(*, days: int = 30, now: datetime | None = None, limit: int = GAP_ROWS) -> QuerySet[Category]:
    """The ticket categories with the most tickets created in the last `days` days and no good
    live article linked to them; each with `recent_tickets` and `live_articles` (linked live
    articles, all of them mostly found unhelpful)."""
    links = Article.ticket_categories.through.objects.filter(category=OuterRef("pk"))
    live = links.filter(article__published_at__isnull=False).exclude(article__status=Article.Status.ARCHIVED)
    live_count = live.order_by().values("category").annotate(n=Count("pk")).values("n")
    return (
        # filter() before annotate(): the join reads only the period's tickets (category index).
        Category.objects.filter(tickets__created_at__gte=_since(days, now))
        .annotate(recent_tickets=Count("tickets"))
        .exclude(Exists(links.filter(good_live_article("article__"))))
        .annotate(live_articles=Coalesce(Subquery(live_count), 0))
        .select_related("parent")
        .order_by("-recent_tickets", "pk")[:limit]
    )


@dataclass(frozen=True)
class GapReport:
    days: int
    since: datetime
    searches: list[dict[str, Any]]
    categories: list[Category]


def gap_report(*, days: int = 30, now: datetime | None = None, source: str = "") -> GapReport:
    """Both halves of the gap report, in two queries."""
    now = now or timezone.now()
    return GapReport(
        days=days,
        since=_since(days, now),
        searches=list(unanswered_searches(days=days, now=now, source=source)),
        categories=list(uncovered_categories(days=days, now=now)),
    )
