"""Operations that change the organisation: agents' presence and the like."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import Agent


@transaction.atomic
def set_presence(*, agent: Agent, presence: str) -> Agent:
    """Set an agent's presence; setting the one it already has changes nothing."""
    if presence not in Agent.Presence.values:
        raise DomainError("invalid_presence", _("Unknown presence “%s”.") % presence, field="presence")
    Agent.objects.filter(pk=agent.pk).exclude(presence=presence).update(
        presence=presence, presence_changed_at=timezone.now()
    )
    agent.refresh_from_db(fields=["presence", "presence_changed_at"])
    return agent
