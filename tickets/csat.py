"""Satisfaction surveys: a signed, single-use link on solve; ratings; the complaint loop."""

from __future__ import annotations

from .models import Ticket


def on_solved(ticket: Ticket) -> None:
    """Called by the ticket services, inside their transaction, when a ticket becomes solved."""
