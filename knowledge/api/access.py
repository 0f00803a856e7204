"""Who reads what in the knowledge-base API, and the budget of anonymous votes.

A help centre reads the knowledge base anonymously or through an integration key; either way
it is a public caller and sees only live public articles, in their reviewed (live) version.
Staff who may read articles see every article that is not archived.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from rest_framework.request import Request

from helpdesk import roles
from helpdesk.api.auth import PerClientThrottle

from .. import search
from ..models import Article

VIEW_PERMISSION = "knowledge.view_article"


def reads_internal(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Staff with the right to read articles; integration keys stay public even though their
    role may view articles, because what they fetch ends up in front of customers."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not roles.has_role(user, roles.API_CLIENT)
        and user.has_perm(VIEW_PERMISSION)
    )


def votes_for_readers(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Anonymous readers and integration keys (a help centre passing on its readers' votes) add
    a vote each time; anyone else signed in has one vote an article."""
    return user is None or not user.is_authenticated or roles.has_role(user, roles.API_CLIENT)


def articles_visible_to(user: AbstractBaseUser | AnonymousUser | None) -> QuerySet[Article]:
    """The same scope as search: live public articles for public callers, else all but archived."""
    return search.visible(public_only=not reads_internal(user), live_only=False)


class AnonymousFeedbackThrottle(PerClientThrottle):
    """Anonymous votes per IP address (KB_FEEDBACK_THROTTLE_RATE): they count in an article's
    ranking, so one reader must not be able to push an article up or down."""

    scope = "kb_feedback"

    def get_rate(self) -> str:
        return settings.KB_FEEDBACK_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None  # keys and staff have their own budget (PerClientThrottle)
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
