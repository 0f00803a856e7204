"""Automatic replies: a first acknowledgement, and notices outside hours and on holidays."""

from __future__ import annotations

from .models import Message, Ticket


def on_customer_message(*, ticket: Ticket, message: Message, first: bool) -> None:
    """Called by the ticket services, inside their transaction, after a customer's message is stored.

    `first` is true for the message that opened the ticket.
    """
