"""The ticket status machine: the one place that says which status may follow which."""

from __future__ import annotations

from .models import Ticket

S = Ticket.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.ON_HOLD, S.SOLVED}),
    S.OPEN: frozenset({S.PENDING, S.ON_HOLD, S.SOLVED}),
    S.PENDING: frozenset({S.OPEN, S.ON_HOLD, S.SOLVED}),
    S.ON_HOLD: frozenset({S.OPEN, S.PENDING, S.SOLVED}),
    # Reopen from solved; closed is final (a customer who writes again starts a new ticket).
    S.SOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def next_statuses(current: str) -> list[tuple[str, str]]:
    """(value, label) of the statuses a ticket in `current` may move to, in display order."""
    allowed = TRANSITIONS.get(current, frozenset())
    return [(value, label) for value, label in S.choices if value in allowed]
