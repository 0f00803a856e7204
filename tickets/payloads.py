"""What webhooks say about a ticket or a message: stable codes and ids, never labels."""

from __future__ import annotations

from typing import Any

from .models import Message, Ticket


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    return {
        "reference": ticket.reference,
        "external_id": ticket.external_id or None,
        "subject": ticket.subject,
        "status": ticket.status,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "category_id": ticket.category_id,
        "team_id": ticket.team_id,
        "assignee_id": ticket.assignee_id,
        "customer_id": ticket.customer_id,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "first_response_at": ticket.first_response_at,
        "solved_at": ticket.solved_at,
        "closed_at": ticket.closed_at,
    }


def message_data(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "ticket": Ticket(pk=message.ticket_id).reference,
        "author": message.author_kind,
        "agent_id": message.author_agent_id,
        "internal": message.is_internal,
        "body": message.body,
        "sent_at": message.sent_at,
        "external_id": message.channel_message_id or None,
    }
