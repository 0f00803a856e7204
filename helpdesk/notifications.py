"""Telling staff: a row in their in-app list, and an email sent after the transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import translation

from .models import Notification, Team
from .roles import ADMINISTRATOR, TEAM_LEAD

logger = logging.getLogger(__name__)


def notify(*, recipients: Iterable[AbstractBaseUser], kind: str, text: str, ticket: Any = None) -> list[Notification]:
    """Write one notification per distinct recipient and queue their emails for after commit."""
    unique = {user.pk: user for user in recipients if user is not None and user.is_active}
    rows = Notification.objects.bulk_create(
        Notification(recipient_id=pk, kind=kind, text=text[:500], ticket=ticket) for pk in unique
    )
    addresses = [user.email for user in unique.values() if user.email]
    if addresses:
        subject = text[:120]
        transaction.on_commit(lambda: _mail(subject, text, addresses), robust=True)
    return rows


def _mail(subject: str, body: str, addresses: list[str]) -> None:
    for address in addresses:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)


def in_default_language(message: Any, **params: Any) -> str:
    """Render a lazy message in the site's language: notifications outlive the request."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(message) % params if params else str(message)


def team_leads(team: Team | None) -> QuerySet:
    if team is None:
        return get_user_model().objects.none()
    return get_user_model().objects.filter(groups__name=TEAM_LEAD, agent__teams=team, is_active=True).distinct()


def administrators() -> QuerySet:
    return get_user_model().objects.filter(Q(groups__name=ADMINISTRATOR) | Q(is_superuser=True), is_active=True).distinct()
