"""Read-side helpers for the organisation."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from .models import Agent


def agent_of(user: AbstractBaseUser | AnonymousUser) -> Agent | None:
    """The user's agent profile, if the user answers conversations."""
    if not user.is_authenticated:
        return None
    try:
        return user.agent
    except Agent.DoesNotExist:
        return None
