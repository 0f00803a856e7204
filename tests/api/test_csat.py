"""The ratings API: other systems submit ratings; staff list ratings and complaints they may see."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from helpdesk import webhooks
from helpdesk.models import Notification, WebhookDelivery, WebhookEndpoint
from tickets import csat
from tickets.models import Complaint, Csat

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/csat/"


@pytest.fixture
def ticket(support_team, alice):
    return TicketFactory(team=support_team, assignee=alice, status="solved")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_integration_submits_a_rating(api, ticket, alice, support_team):
    WebhookEndpoint.objects.create(name="bi", url="http://127.0.0.1:9/x", secret="x", events=["csat.received"])
    webhooks.forget_endpoints()
    response = api.post(
        URL, {"ticket": ticket.reference, "stars": 4, "comment": "ok", "rated_at": "2026-03-01T10:00:00+08:00"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "ticket": ticket.reference, "stars": 4, "comment": "ok", "source": "api",
        "rated_at": "2026-03-01T10:00:00+08:00", "agent": alice.pk, "team": support_team.pk,
    }
    assert Csat.objects.get(ticket=ticket).source == "api"
    assert WebhookDelivery.objects.get(event="csat.received").payload["data"]["stars"] == 4


def test_a_low_rating_through_the_api_opens_a_complaint(api, ticket, lena):
    assert api.post(URL, {"ticket": ticket.reference, "stars": 2}, format="json").status_code == 201
    assert api.post(URL, {"ticket": ticket.reference, "stars": 1}, format="json").status_code == 201
    assert Complaint.objects.filter(ticket=ticket).count() == 1
    assert Csat.objects.get(ticket=ticket).stars == 1
    assert Notification.objects.filter(recipient=lena.user, kind="csat_complaint").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stars": 0}, "stars"),
        ({"stars": 6}, "stars"),
        ({"stars": "many"}, "stars"),
        ({"stars": 3, "ticket": "T99999999"}, "ticket"),
        ({"stars": 3, "ticket": "not a reference"}, "ticket"),
        ({"stars": 3, "rated_at": "2999-01-01T00:00:00Z"}, "rated_at"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, ticket, body, field):
    response = api.post(URL, {"ticket": ticket.reference, **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Csat.objects.exists()


def test_a_ticket_the_caller_cannot_see_is_unknown(bob, ticket):
    bob.user.user_permissions.add(Permission.objects.get(codename="add_csat"))  # may submit, but not for Support
    response = client_for(bob.user).post(URL, {"ticket": ticket.reference, "stars": 5}, format="json")
    assert response.status_code == 400 and "ticket" in response.json()["error"]["fields"]
    assert not Csat.objects.exists()


def test_an_agent_may_not_submit_ratings(alice, ticket):
    response = client_for(alice.user).post(URL, {"ticket": ticket.reference, "stars": 5}, format="json")
    assert response.status_code == 403
    assert not Csat.objects.exists()


def test_the_list_shows_only_ratings_of_visible_tickets(alice, bob, billing_team, ticket):
    csat.record_rating(ticket=ticket, stars=5, source="api")
    csat.record_rating(ticket=TicketFactory(team=billing_team, status="solved"), stars=3, source="api")
    rows = client_for(alice.user).get(URL).json()["results"]
    assert [row["ticket"] for row in rows] == [ticket.reference]
    assert len(client_for(bob.user).get(URL).json()["results"]) == 1
    assert client_for(bob.user).get(URL).json()["results"][0]["stars"] == 3


def test_the_list_filters(api, ticket, alice, support_team, billing_team):
    with time_machine.travel("2026-03-01 10:00+08:00", tick=False):
        csat.record_rating(ticket=ticket, stars=5, source="survey")
    with time_machine.travel("2026-03-10 10:00+08:00", tick=False):
        other = TicketFactory(team=billing_team, status="solved")
        csat.record_rating(ticket=other, stars=2, source="api")

    def refs(query: str) -> list[str]:
        response = api.get(URL + query)
        assert response.status_code == 200, response.json()
        return [row["ticket"] for row in response.json()["results"]]

    assert refs("") == [other.reference, ticket.reference]  # newest first
    assert refs("?stars=5") == [ticket.reference]
    assert refs("?stars=1&stars=2") == [other.reference]
    assert refs("?source=api") == [other.reference]
    assert refs(f"?team={support_team.pk}") == [ticket.reference]
    assert refs(f"?agent={alice.pk}") == [ticket.reference]
    assert refs("?from=2026-03-05T00:00:00%2B08:00") == [other.reference]
    assert refs("?to=2026-03-05") == [ticket.reference]
    assert api.get(URL + "?stars=9").status_code == 400
    assert api.get(URL + "?from=yesterday").status_code == 400


def test_every_filterable_field_has_a_filter():
    from tickets.api.csat import CsatFilter

    assert {"from", "to", "stars", "team", "agent", "source"} <= set(CsatFilter.base_filters)


def test_the_list_costs_the_same_queries_for_one_or_many_ratings(api, support_team, django_assert_num_queries):
    csat.record_rating(ticket=TicketFactory(team=support_team, status="solved"), stars=4, source="api")
    api.get(URL)  # warm the key's caches
    with django_assert_num_queries(2) as one:  # the key, then the page
        assert len(api.get(URL).json()["results"]) == 1
    for _ in range(20):
        csat.record_rating(ticket=TicketFactory(team=support_team, status="solved"), stars=4, source="api")
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(api.get(URL).json()["results"]) == 21


def test_complaints_are_listed_for_the_teams_lead_only(lena, bob, ticket, billing_team):
    csat.record_rating(ticket=ticket, stars=1, source="api")
    rows = client_for(lena.user).get("/api/v1/complaints/").json()["results"]
    assert [(row["ticket"], row["stars"], row["status"]) for row in rows] == [(ticket.reference, 1, "open")]
    assert client_for(bob.user).get("/api/v1/complaints/").status_code == 403  # agents have no complaint rights


def test_a_read_only_key_cannot_submit(ticket):
    from helpdesk.api_keys import create_api_key

    _key, plain = create_api_key(name="bi", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.post(URL, {"ticket": ticket.reference, "stars": 5}, format="json").status_code == 403
