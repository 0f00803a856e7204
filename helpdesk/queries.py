"""Read-side helpers for the organisation."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import Agent
from .roles import sees_everything


def agent_of(user: AbstractBaseUser | AnonymousUser) -> Agent | None:
    """The user's agent profile, if the user answers conversations."""
    if not user.is_authenticated:
        return None
    try:
        return user.agent
    except Agent.DoesNotExist:
        return None


def agents_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Agent]:
    """The agents `user` may see: everyone for roles that work across teams, else their teams'."""
    if sees_everything(user):
        return Agent.objects.all()
    agent = agent_of(user)
    if agent is None:
        return Agent.objects.none()
    return Agent.objects.filter(teams__in=agent.teams.values("pk")).distinct()
