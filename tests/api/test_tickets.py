"""The tickets API: create, list and filter, read, change, transition, conversation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from helpdesk.models import Customer
from tickets import services
from tickets.api.filters import TicketFilter
from tickets.models import Category, Message, SlaClock, Ticket

from ..factories import (
    AgentFactory,
    CategoryFactory,
    CustomerFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
)

pytestmark = pytest.mark.django_db
TICKETS = "/api/v1/tickets/"
S = Ticket.Status


def new_ticket(**overrides):
    body = {
        "subject": "退货申请",
        "channel": "web_chat",
        "category": "after_sales",
        "priority": "normal",
        "customer": {"external_id": "c-1", "name": "张三", "phone": "13800000000", "email": "z@example.com", "tier": "vip"},
        "message": {"body": "我要退货", "sent_at": "2026-11-23T09:00:00+08:00", "external_id": "m-1"},
    }
    return body | overrides


def test_it_creates_a_ticket_with_its_customer_and_first_message(api):
    response = api.post(TICKETS, new_ticket(tags=["加急"]), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    ticket = Ticket.objects.get(pk=Ticket.pk_from_reference(data["reference"]))
    assert (data["status"], data["category"], data["customer"]["tier"], data["tags"]) == ("new", "after_sales", "vip", ["加急"])
    assert ticket.customer.external_id == "c-1"
    message = ticket.messages.get(author_kind=Message.AuthorKind.CUSTOMER)  # an automatic reply may follow it
    assert (message.body, message.channel_message_id, message.sent_at.isoformat()) == ("我要退货", "m-1", "2026-11-23T01:00:00+00:00")


@pytest.mark.parametrize("match", [{"external_id": "c-9"}, {"phone": "13700000000"}, {"email": "w@example.com"}])
def test_it_matches_an_existing_customer_by_external_id_phone_or_email(api, match):
    known = CustomerFactory(external_id="c-9", phone="13700000000", email="w@example.com")
    response = api.post(TICKETS, new_ticket(customer={"name": "王五", **match}), format="json")
    assert response.json()["customer"]["id"] == known.pk
    assert Customer.objects.count() == 1


def test_a_repeated_external_id_returns_the_first_ticket(api):
    first = api.post(TICKETS, new_ticket(external_id="shop-1"), format="json")
    again = api.post(TICKETS, new_ticket(external_id="shop-1", subject="another"), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reference"] == first.json()["reference"] and again.json()["external_id"] == "shop-1"
    assert Ticket.objects.count() == 1


def test_an_idempotency_key_replays_the_first_response_and_changes_nothing(api):
    first = api.post(TICKETS, new_ticket(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(TICKETS, new_ticket(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    clash = api.post(TICKETS, new_ticket(subject="other"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert clash.status_code == 409 and "Idempotency-Key" in clash.json()["error"]["fields"]


def test_an_idempotency_key_expires_after_a_day(api):
    import time_machine

    with time_machine.travel(timezone.now() - timedelta(hours=25)):
        api.post(TICKETS, new_ticket(), format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert api.post(TICKETS, new_ticket(), format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    assert Ticket.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"priority": "asap"}, "priority"),
        ({"category": "nope"}, "category"),
        ({"subject": ""}, "subject"),
        ({"customer": {}}, "customer.name"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
        ({"message": {"body": "   "}}, "message.body"),
        ({"message": {"body": "x", "sent_at": "yesterday"}}, "message.sent_at"),
        ({"team": 999999}, "team"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(api, change, field):
    response = api.post(TICKETS, new_ticket(**change), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Ticket.objects.count() == 0


def test_malformed_json_is_a_400(api):
    response = api.post(TICKETS, "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


def list_queries(api, **params) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(TICKETS, params)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()


def test_the_list_costs_at_most_8_queries_whatever_the_page_size(api):
    team = TeamFactory()
    for ticket in TicketFactory.create_batch(30, team=team, assignee=AgentFactory(), category=CategoryFactory()):
        services.add_tags(ticket=ticket, names=["a", "b"])
    api.get(TICKETS)  # the key's first use of the minute also records last_used_at
    small, _ = list_queries(api, page_size=2)
    large, data = list_queries(api, page_size=30)
    assert small == large <= 8
    assert len(data["results"]) == 30 and all(t["tags"] == ["a", "b"] for t in data["results"])


def test_cursor_pages_walk_every_ticket_once(api):
    made = {t.reference for t in TicketFactory.create_batch(7)}
    seen, url = [], TICKETS + "?page_size=3"
    while url:
        page = api.get(url).json()
        seen += [t["reference"] for t in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(made)


def test_every_filter_narrows_the_list(api):
    team, agent, category, customer = TeamFactory(), AgentFactory(), Category.objects.get(code="refund"), CustomerFactory()
    match = TicketFactory(
        subject="退款到账", status=S.PENDING, channel="email", priority="urgent", team=team, assignee=agent,
        category=category, customer=customer, external_id="x-1",
    )
    Ticket.objects.filter(pk=match.pk).update(created_at=timezone.now() - timedelta(days=3), updated_at=timezone.now())
    old, recent = TicketFactory(subject="old"), TicketFactory(subject="recent")
    Ticket.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10), updated_at=timezone.now() - timedelta(days=10))
    Ticket.objects.filter(pk=recent.pk).update(updated_at=timezone.now() - timedelta(days=5))
    day = timezone.now() - timedelta(days=1)
    SlaClock.objects.create(
        ticket=match, metric="resolution", target_seconds=3600, started_at=day, due_at=day + timedelta(hours=1),
        breached_at=day + timedelta(hours=1),
    )
    SlaClock.objects.create(  # met in time: neither breached nor due
        ticket=old, metric="resolution", target_seconds=3600, started_at=day, due_at=day + timedelta(hours=1),
        fulfilled_at=day,
    )
    params = {
        "status": "pending", "channel": "email", "priority": "urgent", "team": team.pk, "assignee": agent.pk,
        "category": "refund", "customer": customer.pk, "external_id": "x-1", "q": "退款",
        "created_before": day.isoformat(), "created_after": (day - timedelta(days=3)).isoformat(),
        "updated_after": day.isoformat(), "sla_breached": "true", "sla_due_before": timezone.now().isoformat(),
    }
    assert set(params) == set(TicketFilter.base_filters)  # a new filter needs a line here
    expected = {name: {match.reference} for name in params}
    expected["created_before"] = {match.reference, old.reference}
    expected["created_after"] = {match.reference, recent.reference}
    for name, value in params.items():
        refs = {t["reference"] for t in api.get(TICKETS, {name: value}).json()["results"]}
        assert refs == expected[name], name
    refs = [t["reference"] for t in api.get(TICKETS, params).json()["results"]]
    assert refs == [match.reference]


def test_q_finds_a_reference(api):
    ticket = TicketFactory()
    TicketFactory()
    assert [t["reference"] for t in api.get(TICKETS, {"q": ticket.reference}).json()["results"]] == [ticket.reference]


def test_a_bad_filter_value_is_a_400_naming_it(api):
    response = api.get(TICKETS, {"status": "lost", "created_after": "soon"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"status", "created_after"}


def test_sync_by_updated_at(api):
    old, fresh = TicketFactory(), TicketFactory()
    Ticket.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    results = api.get(TICKETS, {"ordering": "updated_at", "updated_after": (timezone.now() - timedelta(days=1)).isoformat()}).json()["results"]
    assert [t["reference"] for t in results] == [fresh.reference]


def test_read_by_reference_and_404_for_unknown_or_malformed(api):
    ticket = TicketFactory()
    assert api.get(f"{TICKETS}{ticket.reference}/").json()["reference"] == ticket.reference
    for reference in ["T99999999", "nonsense", "T0000000x"]:
        response = api.get(f"{TICKETS}{reference}/")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_an_agent_cannot_read_another_teams_ticket(client, alice, billing_team):
    other = TicketFactory(team=billing_team)
    client.force_login(alice.user)
    assert client.get(f"{TICKETS}{other.reference}/").status_code == 404


def test_patch_changes_priority_category_tags_team_and_assignee(api):
    ticket, team, agent = TicketFactory(), TeamFactory(), AgentFactory()
    response = api.patch(
        f"{TICKETS}{ticket.reference}/",
        {"priority": "high", "category": "returns", "tags": ["vip", "回访"], "team": team.pk, "assignee": agent.pk},
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["priority"], data["category"], sorted(data["tags"]), data["team"]["id"], data["assignee"]["id"], data["status"]) == (
        "high", "returns", ["vip", "回访"], team.pk, agent.pk, "open"
    )


def test_patch_refuses_bad_values(api):
    ticket = TicketFactory()
    response = api.patch(f"{TICKETS}{ticket.reference}/", {"priority": "asap", "assignee": 999999}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"priority", "assignee"}


def test_a_legal_transition_applies_and_an_illegal_one_is_a_409(api):
    ticket = TicketFactory(status=S.OPEN)
    url = f"{TICKETS}{ticket.reference}/transition"
    assert api.post(url, {"status": "solved", "reason": "done"}, format="json").json()["status"] == "solved"
    response = api.post(url, {"status": "pending"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "illegal_transition" and "status" in response.json()["error"]["fields"]
    assert api.post(url, {"status": "vanished"}, format="json").status_code == 400


def test_the_conversation_lists_oldest_first_in_constant_queries(api):
    ticket = TicketFactory()
    agent = AgentFactory()
    for minutes in (3, 1, 2):
        MessageFactory(ticket=ticket, sent_at=timezone.now() - timedelta(minutes=minutes), author_kind="agent", author_agent=agent)
    url = f"{TICKETS}{ticket.reference}/messages/"
    api.get(TICKETS)  # the key's first use of the minute also records last_used_at
    with CaptureQueriesContext(connection) as ctx:
        data = api.get(url).json()
    few = len(ctx.captured_queries)
    times = [m["sent_at"] for m in data["results"]]
    assert times == sorted(times) and data["results"][0]["agent"]["username"] == agent.user.username
    MessageFactory.create_batch(20, ticket=ticket, author_kind="agent", author_agent=AgentFactory())
    with CaptureQueriesContext(connection) as ctx:
        api.get(url)
    assert len(ctx.captured_queries) == few


def test_another_system_posts_customer_messages_and_agent_replies(api, alice):
    ticket = TicketFactory(status=S.PENDING)
    url = f"{TICKETS}{ticket.reference}/messages/"
    customer = api.post(url, {"author": "customer", "body": "还没到", "external_id": "m-7"}, format="json")
    assert customer.status_code == 201
    assert api.post(url, {"author": "customer", "body": "还没到", "external_id": "m-7"}, format="json").json()["id"] == customer.json()["id"]
    reply = api.post(url, {"author": "agent", "agent": "alice", "body": "马上处理", "status": "solved"}, format="json")
    assert reply.status_code == 201 and reply.json()["agent"]["username"] == "alice"
    ticket.refresh_from_db()
    written = ticket.messages.exclude(author_kind=Message.AuthorKind.SYSTEM)  # automatic replies aside
    assert written.count() == 2 and ticket.status == S.SOLVED and ticket.first_response_at is not None


def test_message_errors_name_their_field(api):
    ticket = TicketFactory(status=S.CLOSED)
    url = f"{TICKETS}{ticket.reference}/messages/"
    assert "agent" in api.post(url, {"author": "agent", "body": "x", "agent": "ghost"}, format="json").json()["error"]["fields"]
    assert "agent" in api.post(url, {"author": "agent", "body": "x"}, format="json").json()["error"]["fields"]
    closed = api.post(url, {"author": "customer", "body": "hello"}, format="json")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "ticket_closed"
    assert Message.objects.count() == 0


@pytest.mark.parametrize("value", ["1263-05-15T02:05:04.9-20:21", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_extreme_datetimes_in_filters_are_handled_not_500(api, value):
    response = api.get(TICKETS, {"created_after": value})
    assert response.status_code in (200, 400)


def test_a_customer_named_by_id_cannot_take_another_customers_external_id(api):
    taken, named = CustomerFactory(external_id="c-1"), CustomerFactory(external_id="")
    response = api.post(TICKETS, new_ticket(customer={"id": named.pk, "external_id": "c-1"}), format="json")
    assert response.status_code == 409 and "external_id" in response.json()["error"]["fields"]
    assert Ticket.objects.count() == 0
    named.refresh_from_db()
    assert named.external_id == "" and taken.external_id == "c-1"
