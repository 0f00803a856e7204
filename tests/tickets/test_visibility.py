from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from tickets.queries import visible_to

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tickets(support_team, billing_team, bob):
    return {
        "support": TicketFactory(team=support_team),
        "billing": TicketFactory(team=billing_team),
        "billing_for_bob": TicketFactory(team=billing_team, assignee=bob),
        "no_team": TicketFactory(team=None),
    }


def seen(user, tickets) -> set[str]:
    ids = set(visible_to(user).values_list("pk", flat=True))
    return {name for name, ticket in tickets.items() if ticket.pk in ids}


def test_an_agent_sees_only_their_teams_tickets(alice, tickets):
    assert seen(alice.user, tickets) == {"support"}


def test_an_agent_also_sees_tickets_assigned_to_them_outside_their_team(bob, tickets):
    assert seen(bob.user, tickets) == {"billing", "billing_for_bob"}


def test_a_team_lead_sees_their_teams_tickets(lena, tickets):
    assert seen(lena.user, tickets) == {"support"}


@pytest.mark.parametrize("persona", ["ada", "iris", "tom"])
def test_administrators_inspectors_and_trainers_see_every_ticket(persona, tickets, request):
    assert seen(request.getfixturevalue(persona), tickets) == set(tickets)


def test_a_staff_user_with_no_role_or_agent_profile_sees_nothing(olga, tickets):
    assert seen(olga, tickets) == set()


def test_an_anonymous_or_inactive_user_sees_nothing(alice, tickets):
    assert seen(AnonymousUser(), tickets) == set()
    alice.user.is_active = False
    alice.user.save()
    assert seen(alice.user, tickets) == set()
