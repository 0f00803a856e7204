from __future__ import annotations

import pytest
from django.urls import reverse

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_team_lead_manages_only_their_teams_agents_and_cannot_move_them(client, lena, alice, bob, support_team, billing_team):
    client.force_login(lena.user)
    listing = client.get(reverse("admin:helpdesk_agent_changelist"))
    assert set(listing.context["cl"].result_list) == {lena, alice}
    assert client.get(reverse("admin:helpdesk_agent_change", args=[bob.pk])).status_code == 302  # not found
    response = client.post(
        reverse("admin:helpdesk_agent_change", args=[lena.pk]),
        {"display_name": "Lena", "teams": [support_team.pk, billing_team.pk], "skills": [],
         "max_concurrent": 9, "presence": "online", "user": UserFactory().pk},
    )
    assert response.status_code == 302
    lena.refresh_from_db()
    assert lena.max_concurrent == 9
    assert list(lena.teams.all()) == [support_team] and lena.user.username == "lena"


def test_an_administrator_moves_agents_between_teams(client, ada, alice, billing_team):
    client.force_login(ada)
    response = client.post(
        reverse("admin:helpdesk_agent_change", args=[alice.pk]),
        {"display_name": "Alice", "teams": [billing_team.pk], "skills": [], "max_concurrent": 5,
         "presence": "offline", "user": alice.user.pk},
    )
    assert response.status_code == 302
    assert list(alice.teams.all()) == [billing_team]


def test_an_administrator_makes_a_user_an_agent_on_the_user_page(client, ada, support_team):
    user = UserFactory(username="newbie")
    client.force_login(ada)
    page = client.get(reverse("admin:auth_user_change", args=[user.pk]))
    assert page.status_code == 200 and "agent-0-display_name" in page.content.decode()
