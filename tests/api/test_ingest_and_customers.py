"""Chat platforms pushing messages; customers, teams and agents."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from helpdesk.models import Customer
from tickets import services
from tickets.models import Message, Ticket

from ..factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db
S = Ticket.Status
INGEST = "/api/v1/messages/ingest"


def push(api, body, external_id, conversation="conv-1", **extra):
    return api.post(
        INGEST,
        {"channel": "wechat", "conversation_id": conversation, "customer": {"external_id": "wx-user-1", "name": "微信用户"},
         "message": {"body": body, "external_id": external_id}} | extra,
        format="json",
    )


def test_a_new_conversation_opens_a_ticket_and_later_messages_join_it(api):
    first = push(api, "你好，在吗", "w-1")
    assert first.status_code == 201 and first.json()["ticket_created"] is True
    second = push(api, "我的订单有问题", "w-2")
    assert second.status_code == 200 and second.json()["ticket_created"] is False
    assert second.json()["ticket"]["reference"] == first.json()["ticket"]["reference"]
    ticket = Ticket.objects.get()
    customer_messages = ticket.messages.filter(author_kind=Message.AuthorKind.CUSTOMER)  # automatic replies aside
    assert (ticket.channel, ticket.conversation_id, customer_messages.count()) == ("wechat", "conv-1", 2)


@time_machine.travel(datetime(2026, 11, 24, 22, tzinfo=ZoneInfo("Asia/Shanghai")), tick=False)  # a Tuesday night
def test_a_new_chat_outside_business_hours_is_stored_and_returned_with_the_notice_after_it(api):
    response = push(api, "你好，在吗", "w-1")
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    customer_message = ticket.messages.get(author_kind=Message.AuthorKind.CUSTOMER)
    assert response.json()["message"]["id"] == customer_message.pk
    assert response.json()["message"]["body"] == "你好，在吗"
    assert list(ticket.messages.order_by("pk").values_list("author_kind", flat=True)) == ["customer", "system"]


def test_a_resent_message_is_stored_once(api):
    push(api, "你好", "w-1")
    again = push(api, "你好", "w-1")
    assert again.json()["ticket_created"] is False
    assert Ticket.objects.get().messages.filter(author_kind=Message.AuthorKind.CUSTOMER).count() == 1


def test_writing_after_solve_reopens_the_ticket(api):
    push(api, "你好", "w-1")
    ticket = services.change_status(ticket=Ticket.objects.get(), status=S.SOLVED)
    push(api, "又出问题了", "w-2")
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN and Ticket.objects.count() == 1


def test_writing_after_close_starts_a_new_ticket_linked_to_the_old(api):
    closed_ref = push(api, "你好", "w-1").json()["ticket"]["reference"]
    ticket = Ticket.objects.get()
    services.change_status(ticket=ticket, status=S.SOLVED)
    services.change_status(ticket=ticket, status=S.CLOSED)
    response = push(api, "新问题", "w-2")
    assert response.status_code == 201 and response.json()["ticket"]["previous_ticket"] == closed_ref
    assert Ticket.objects.count() == 2
    assert Ticket.objects.get(pk=Ticket.pk_from_reference(response.json()["ticket"]["reference"])).customer == ticket.customer


def test_other_conversations_and_channels_are_other_tickets(api):
    push(api, "a", "1")
    push(api, "b", "2", conversation="conv-2")
    push(api, "c", "3", channel="weibo")
    assert Ticket.objects.count() == 3


def test_ingest_names_the_bad_field(api):
    response = api.post(INGEST, {"channel": "pigeon", "conversation_id": "", "customer": {}, "message": {}}, format="json")
    assert response.status_code == 400
    assert {"channel", "conversation_id", "customer.name", "message.body"} <= set(response.json()["error"]["fields"])


CUSTOMERS = "/api/v1/customers/"


def test_customers_are_created_found_and_updated(api):
    created = api.post(CUSTOMERS, {"external_id": "c-1", "name": "李四", "phone": "13600000000", "tier": "vip"}, format="json")
    assert created.status_code == 201
    customer_id = created.json()["id"]
    for params in ({"external_id": "c-1"}, {"phone": "13600000000"}):
        assert [c["id"] for c in api.get(CUSTOMERS, params).json()["results"]] == [customer_id]
    assert api.get(CUSTOMERS, {"email": "none@example.com"}).json()["results"] == []
    updated = api.patch(f"{CUSTOMERS}{customer_id}/", {"email": "li@example.com", "tier": "enterprise"}, format="json")
    assert updated.json()["email"] == "li@example.com" and updated.json()["tier"] == "enterprise"


def test_customer_errors_name_the_field(api):
    CustomerFactory(external_id="c-1")
    response = api.post(CUSTOMERS, {"external_id": "c-1", "name": "", "email": "bad", "tier": "gold"}, format="json")
    assert response.status_code == 400
    assert {"external_id", "name", "email", "tier"} <= set(response.json()["error"]["fields"])
    assert Customer.objects.count() == 1


def test_a_customers_tickets(api):
    customer = CustomerFactory()
    mine = TicketFactory.create_batch(2, customer=customer)
    TicketFactory()
    refs = {t["reference"] for t in api.get(f"{CUSTOMERS}{customer.pk}/tickets/").json()["results"]}
    assert refs == {t.reference for t in mine}


def test_teams_and_agents_are_listed(api, alice, bob):
    teams = api.get("/api/v1/teams/").json()["results"]
    assert {t["name"] for t in teams} == {"Support", "Billing"}
    agents = api.get("/api/v1/agents/").json()["results"]
    assert {a["username"] for a in agents} == {"alice", "bob"}


def test_an_agent_sets_their_own_presence(client, alice):
    client.force_login(alice.user)
    response = client.patch("/api/v1/agents/me/", {"presence": "busy"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["presence"] == "busy"
    bad = client.patch("/api/v1/agents/me/", {"presence": "asleep"}, content_type="application/json")
    assert bad.status_code == 400 and "presence" in bad.json()["error"]["fields"]
    alice.refresh_from_db()
    assert alice.presence == "busy"


def test_only_agents_have_a_presence(api):
    response = api.patch("/api/v1/agents/me/", {"presence": "busy"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_an_agent"


def test_a_resend_after_the_follow_up_ticket_is_still_stored_once(api):
    push(api, "你好", "w-1")
    ticket = Ticket.objects.get()
    services.change_status(ticket=ticket, status=S.SOLVED)
    services.change_status(ticket=ticket, status=S.CLOSED)
    push(api, "新问题", "w-2")
    again = push(api, "你好", "w-1")
    assert again.json()["ticket"]["reference"] == ticket.reference
    customer_messages = Message.objects.filter(author_kind=Message.AuthorKind.CUSTOMER)
    assert Ticket.objects.count() == 2 and customer_messages.count() == 2  # (and the survey link on solve)


def test_a_conversation_can_have_only_one_open_ticket(db):
    from django.db import IntegrityError, transaction

    TicketFactory(channel="wechat", conversation_id="c-9", status=S.OPEN)
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketFactory(channel="wechat", conversation_id="c-9", status=S.NEW)
    TicketFactory(channel="wechat", conversation_id="c-9", status=S.CLOSED)  # history may hold many


@pytest.mark.parametrize("lookup", [{"phone": "13800000000"}, {"email": "a@example.com"}, {"external_id": "crm-1"}])
def test_a_customer_lookup_by_contact_details_needs_the_pii_right(client, db, lookup):
    from django.contrib.auth.models import Permission

    from ..factories import UserFactory

    user = UserFactory(username="auditor")
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    assert client.get(CUSTOMERS).status_code == 200
    response = client.get(CUSTOMERS, lookup)
    assert response.status_code == 403, response.content
