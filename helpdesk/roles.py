"""Role names. The groups themselves are made by migration helpdesk.0002_roles."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

AGENT = "Agent"
TEAM_LEAD = "Team Lead"
QA_INSPECTOR = "QA Inspector"
TRAINER = "Trainer"
ADMINISTRATOR = "Administrator"
API_CLIENT = "API Client"

ALL = (AGENT, TEAM_LEAD, QA_INSPECTOR, TRAINER, ADMINISTRATOR, API_CLIENT)


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    """Whether the user is in the role's group; cached on the user for the request."""
    if not user.is_authenticated:
        return False
    names = getattr(user, "_helpdesk_roles", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._helpdesk_roles = names
    return role in names


def is_administrator(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and user.is_active and (user.is_superuser or has_role(user, ADMINISTRATOR))


def sees_everything(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Administrators, QA inspectors, trainers and integrations work across teams."""
    if not user.is_authenticated or not user.is_active:
        return False
    return (
        user.is_superuser
        or has_role(user, ADMINISTRATOR)
        or has_role(user, QA_INSPECTOR)
        or has_role(user, TRAINER)
        or has_role(user, API_CLIENT)
    )
