"""Routing: which team and skill a new ticket needs, and which agent gets it."""

from __future__ import annotations

from .models import Ticket

LOAD_STATUSES = (Ticket.Status.NEW, Ticket.Status.OPEN)


def route_new_ticket(ticket: Ticket, *, body: str) -> None:
    """Before the first save: team, required skill and (when missing) category from the rules."""


def assign_new_ticket(ticket: Ticket) -> None:
    """After the first save: give the ticket to the best agent of its team, if one is free."""


def on_capacity_freed(ticket: Ticket) -> None:
    """The ticket's assignee holds one conversation fewer: give them the next waiting one."""
