"""What an agent (not an integration) may reach through the API: only their teams' work."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from helpdesk.models import IdempotentRequest
from tickets.models import Message, Ticket

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db
TICKETS = "/api/v1/tickets/"


def post(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def test_creating_with_another_teams_external_id_reveals_nothing(client, alice, billing_team):
    TicketFactory(team=billing_team, external_id="shop-9", subject="机密")
    client.force_login(alice.user)
    response = post(client, TICKETS, {"subject": "x", "channel": "email", "external_id": "shop-9",
                                      "customer": {"name": "n"}, "message": {"body": "b"}})
    assert response.status_code == 409 and "机密" not in response.content.decode()
    assert response.json()["error"]["fields"] == {"external_id": [response.json()["error"]["message"]]}


def test_an_agent_cannot_ingest_or_import(client, alice, billing_team):
    TicketFactory(team=billing_team, channel="wechat", conversation_id="c-1")
    client.force_login(alice.user)
    ingest = post(client, "/api/v1/messages/ingest", {"channel": "wechat", "conversation_id": "c-1",
                                                      "customer": {"name": "n"}, "message": {"body": "hi"}})
    assert ingest.status_code == 403
    imported = client.post("/api/v1/imports/tickets", "{}", content_type="application/x-ndjson")
    assert imported.status_code == 403
    assert Message.objects.count() == 0


def test_an_administrator_may_import(client, ada):
    client.force_login(ada)
    response = client.post("/api/v1/imports/tickets", "not json", content_type="application/x-ndjson")
    # Past the permission check: the line itself is refused, naming it (a file with a bad line imports nothing).
    assert response.status_code == 400
    assert any(field.startswith("lines[1]") for field in response.json()["error"]["fields"])


def test_an_agent_replies_only_as_themselves(client, alice, bob, support_team):
    ticket = TicketFactory(team=support_team)
    client.force_login(alice.user)
    url = f"{TICKETS}{ticket.reference}/messages/"
    forged = post(client, url, {"author": "agent", "agent": "bob", "body": "我是 Bob"})
    assert forged.status_code == 400 and "agent" in forged.json()["error"]["fields"]
    mine = post(client, url, {"author": "agent", "body": "我是 Alice"})
    assert mine.status_code == 201 and mine.json()["agent"]["username"] == "alice"
    assert ticket.messages.count() == 1


def test_an_agent_cannot_reach_another_teams_ticket_by_any_route(client, alice, billing_team):
    other = TicketFactory(team=billing_team, status="open")
    client.force_login(alice.user)
    base = f"{TICKETS}{other.reference}/"
    assert client.get(base).status_code == 404
    assert client.patch(base, "{}", content_type="application/json").status_code == 404
    assert post(client, base + "transition", {"status": "solved"}).status_code == 404
    assert client.get(base + "messages/").status_code == 404
    assert post(client, base + "messages/", {"author": "customer", "body": "x"}).status_code == 404
    assert client.get(f"/api/v1/customers/{other.customer_id}/tickets/").json()["results"] == []
    other.refresh_from_db()
    assert other.status == "open" and other.messages.count() == 0


def test_agents_see_the_agents_of_their_teams(client, lena, alice, bob):
    client.force_login(lena.user)
    assert {a["username"] for a in client.get("/api/v1/agents/").json()["results"]} == {"lena", "alice"}
    assert client.get(f"/api/v1/agents/{bob.pk}/").status_code == 404


def test_the_list_query_count_is_the_same_for_an_agent(client, alice, support_team):
    client.force_login(alice.user)
    TicketFactory.create_batch(3, team=support_team)
    client.get(TICKETS)
    with CaptureQueriesContext(connection) as few:
        client.get(TICKETS)
    TicketFactory.create_batch(30, team=support_team)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(TICKETS).json()["results"]) == 33
    assert len(few.captured_queries) == len(many.captured_queries) <= 8


def test_a_crashed_request_releases_its_idempotency_key(api, monkeypatch):
    from tickets import intake

    def boom(**kwargs):
        raise RuntimeError("worker fell over")

    monkeypatch.setattr(intake, "create_ticket", boom)
    body = {"subject": "s", "channel": "email", "customer": {"name": "n"}, "message": {"body": "b"}}
    api.raise_request_exception = False
    assert api.post(TICKETS, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 500
    assert not IdempotentRequest.objects.exists()
    monkeypatch.undo()
    assert api.post(TICKETS, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201


def test_a_refused_request_is_replayed_as_refused(api):
    ticket = TicketFactory(status="closed")
    url = f"{TICKETS}{ticket.reference}/transition"
    first = api.post(url, {"status": "open"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    again = api.post(url, {"status": "open"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert first.status_code == again.status_code == 409 and again.json() == first.json()


def test_idempotency_keys_are_per_caller(api, client, ada):
    body = {"subject": "s", "channel": "email", "customer": {"name": "n"}, "message": {"body": "b"}}
    api.post(TICKETS, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    client.force_login(ada)
    response = client.post(TICKETS, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="same")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert Ticket.objects.count() == 2


def test_unknown_api_paths_answer_in_the_error_shape(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
