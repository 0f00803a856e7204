"""Conversations arriving from other systems: a new ticket, or a message in a conversation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import Team
from helpdesk.services import match_customer

from . import queries, services
from .models import Category, Message, Ticket

CATEGORY_CACHE_KEY = "helpdesk:active-categories"


def category_by_code(code: str | None) -> Category | None:
    if not code:
        return None
    category = active_categories().get(code)
    if category is None:
        raise DomainError("invalid_category", _("Unknown category “%s”.") % code, field="category")
    return category


def active_categories() -> dict[str, Category]:
    """Active categories by code, cached briefly: every created ticket names one."""
    categories = cache.get(CATEGORY_CACHE_KEY)
    if categories is None:
        categories = {c.code: c for c in Category.objects.filter(is_active=True)}
        cache.set(CATEGORY_CACHE_KEY, categories, 30)
    return categories


@transaction.atomic
def create_ticket(
    *,
    subject: str,
    channel: str,
    customer: dict[str, Any],
    message: dict[str, Any],
    category: str | None = None,
    priority: str = Ticket.Priority.NORMAL,
    team: Team | None = None,
    tags: list[str] | None = None,
    external_id: str = "",
    conversation_id: str = "",
    actor: AbstractBaseUser | None = None,
) -> tuple[Ticket, bool]:
    """Open a ticket for a customer matched (or made) from `customer`; returns (ticket, created).

    A ticket with the same external id is returned as it was, created=False.
    """
    if external_id:
        existing = Ticket.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    if conversation_id and Ticket.objects.filter(channel=channel, conversation_id=conversation_id).exclude(
        status=Ticket.Status.CLOSED
    ).exists():
        raise DomainError(
            "duplicate", _("This conversation has an open ticket; post to its messages."), field="conversation_id"
        )
    found = match_customer(**customer, visible=queries.customers_matchable_by(actor))
    try:
        ticket = _open(
            customer=found.customer, discloses_customer=found.disclosed, subject=subject, channel=channel,
            message=message, category=category, priority=priority, team=team, external_id=external_id, conversation_id=conversation_id, actor=actor,
        )
    except DomainError as error:
        if error.code != "duplicate" or not external_id:
            raise
        return Ticket.objects.get(external_id=external_id), False  # a concurrent retry won
    if tags:
        services.add_tags(ticket=ticket, names=tags, actor=actor)
    return ticket, True


def _open(*, customer: Any, message: dict[str, Any], category: str | None, **fields: Any) -> Ticket:
    def open_() -> Ticket:
        return services.open_ticket(
            customer=customer,
            body=message["body"],
            sent_at=message.get("sent_at"),
            channel_message_id=message.get("external_id", ""),
            attachments=message.get("attachments", ()),
            category=category_by_code(category),
            **fields,
        )

    if not fields["external_id"]:
        return open_()
    with transaction.atomic():  # a savepoint: losing the external-id race must not spoil the caller's transaction
        return open_()


@dataclass(frozen=True)
class Ingested:
    ticket: Ticket
    message: Message
    ticket_created: bool


@transaction.atomic
def ingest_message(
    *,
    channel: str,
    conversation_id: str,
    customer: dict[str, Any],
    body: str,
    sent_at: datetime | None = None,
    external_id: str = "",
    attachments: list[dict[str, Any]] | None = None,
    subject: str = "",
    actor: AbstractBaseUser | None = None,
) -> Ingested:
    """A customer's chat message: joins the conversation's open ticket or opens one.

    Writing after solve reopens the ticket (post_message's rule); writing after close starts
    a new ticket linked to the closed one.
    """
    if not conversation_id.strip():
        raise DomainError("required", _("A conversation id is required."), field="conversation_id")
    conversation = Ticket.objects.filter(channel=channel, conversation_id=conversation_id)
    if external_id:
        # A resend of a message the conversation already holds, in whichever of its tickets.
        seen = Message.objects.filter(ticket__in=conversation, channel_message_id=external_id).select_related("ticket").first()
        if seen is not None:
            return Ingested(ticket=seen.ticket, message=seen, ticket_created=False)
    for _attempt in range(2):
        latest = conversation.select_for_update(of=("self",)).order_by("-id").first()
        if latest is not None and latest.status != Ticket.Status.CLOSED:
            message = services.post_message(
                ticket=latest, author_kind=Message.AuthorKind.CUSTOMER, body=body, sent_at=sent_at,
                channel_message_id=external_id, attachments=attachments or (), actor=actor,
            )
            return Ingested(ticket=latest, message=message, ticket_created=False)
        found = match_customer(**customer, visible=queries.customers_matchable_by(actor)) if latest is None else None
        try:
            with transaction.atomic():
                ticket = services.open_ticket(
                    customer=found.customer if found else latest.customer,
                    discloses_customer=found.disclosed if found else latest.discloses_customer,
                    subject=subject or body.strip()[:80], channel=channel, body=body,
                    sent_at=sent_at, channel_message_id=external_id, attachments=attachments or (),
                    conversation_id=conversation_id, previous_ticket=latest, actor=actor,
                )
        except IntegrityError:
            continue  # another message of this conversation opened its ticket a moment ago: join it
        return Ingested(ticket=ticket, message=ticket.opening_message, ticket_created=True)
    raise DomainError("busy", _("The conversation is changing; retry."))
