from __future__ import annotations

import itertools

import pytest

from helpdesk.errors import DomainError
from tickets import services
from tickets.models import Ticket
from tickets.transitions import TRANSITIONS

from ..factories import TicketFactory

S = Ticket.Status
LEGAL = {
    (S.NEW, S.OPEN), (S.NEW, S.PENDING), (S.NEW, S.ON_HOLD), (S.NEW, S.SOLVED),
    (S.OPEN, S.PENDING), (S.OPEN, S.ON_HOLD), (S.OPEN, S.SOLVED),
    (S.PENDING, S.OPEN), (S.PENDING, S.ON_HOLD), (S.PENDING, S.SOLVED),
    (S.ON_HOLD, S.OPEN), (S.ON_HOLD, S.PENDING), (S.ON_HOLD, S.SOLVED),
    (S.SOLVED, S.OPEN), (S.SOLVED, S.CLOSED),
}
ALL_PAIRS = list(itertools.product(S.values, S.values))


def test_the_status_machine_is_exactly_the_documented_one():
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == LEGAL


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_it_applies_every_legal_transition(current, target):
    ticket = TicketFactory(status=current)
    services.change_status(ticket=ticket, status=target, reason="test")
    ticket.refresh_from_db()
    assert ticket.status == target
    assert ticket.history.first().history_change_reason == "test"


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), sorted(p for p in ALL_PAIRS if p not in LEGAL))
def test_it_refuses_every_illegal_transition_and_changes_nothing(current, target):
    ticket = TicketFactory(status=current)
    history_rows = ticket.history.count()
    with pytest.raises(DomainError) as error:
        services.change_status(ticket=ticket, status=target)
    assert error.value.code == "illegal_transition"
    assert error.value.field == "status"
    ticket.refresh_from_db()
    assert ticket.status == current
    assert ticket.history.count() == history_rows


@pytest.mark.django_db
def test_it_refuses_an_unknown_status():
    ticket = TicketFactory(status=S.OPEN)
    with pytest.raises(DomainError) as error:
        services.change_status(ticket=ticket, status="deleted")
    assert error.value.code == "invalid_status"


@pytest.mark.django_db
def test_solving_stamps_solved_at_and_reopening_clears_it():
    ticket = TicketFactory(status=S.OPEN)
    ticket = services.change_status(ticket=ticket, status=S.SOLVED)
    assert ticket.solved_at is not None
    ticket = services.change_status(ticket=ticket, status=S.OPEN)
    assert ticket.solved_at is None


@pytest.mark.django_db
def test_closing_stamps_closed_at():
    ticket = TicketFactory(status=S.SOLVED)
    ticket = services.change_status(ticket=ticket, status=S.CLOSED)
    assert ticket.closed_at is not None


@pytest.mark.django_db
def test_the_transition_is_decided_on_the_stored_status_not_a_stale_copy():
    ticket = TicketFactory(status=S.SOLVED)
    stale = Ticket.objects.get(pk=ticket.pk)
    services.change_status(ticket=ticket, status=S.CLOSED)
    with pytest.raises(DomainError):
        services.change_status(ticket=stale, status=S.OPEN)  # stale copy still says solved
    assert Ticket.objects.get(pk=ticket.pk).status == S.CLOSED
