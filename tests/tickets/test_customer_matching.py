"""Matching a customer by a phone, email or external id discloses nothing the caller cannot see.

Billing serves 王芳; alice (Support) opens a ticket naming her phone, email or shop id. The ticket
is linked to 王芳 (no duplicate record), but alice reads her masked, without id or tier, cannot
open her record, and changes nothing on it. Naming a customer by an id alice cannot see is the
same answer as an id that does not exist.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from helpdesk.models import Customer
from tickets import intake
from tickets.models import Ticket

from ..factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db

TICKETS, CUSTOMERS = "/api/v1/tickets/", "/api/v1/customers/"
NAME, PHONE, EMAIL, SHOP_ID = "王芳芳", "13912345678", "wang.fang@billing-example.com", "shop-wf-889900"
SECRETS = (NAME, PHONE, EMAIL, SHOP_ID)


@pytest.fixture
def wang(billing_team, support_team) -> Customer:
    customer = CustomerFactory(name=NAME, phone=PHONE, email="", external_id=SHOP_ID, tier="vip")
    TicketFactory(team=billing_team, customer=customer, subject="账单问题")
    Customer.objects.filter(pk=customer.pk).update(email=EMAIL)
    customer.refresh_from_db()
    customer.support_team = support_team  # where alice's new tickets go
    return customer


def _create(client, customer: dict, team=None):
    body = {"subject": "来电咨询", "channel": "phone", "customer": customer, "message": {"body": "客户来电"}}
    if team is not None:
        body["team"] = team.pk
    return client.post(TICKETS, body, content_type="application/json")


@pytest.mark.parametrize("named_by", [{"phone": PHONE}, {"email": EMAIL}, {"external_id": SHOP_ID}])
def test_an_agent_naming_another_teams_customer_gets_the_ticket_but_not_the_customer(client, alice, wang, named_by):
    client.force_login(alice.user)
    response = _create(client, {**named_by, "name": "来电者", "tier": "standard"}, wang.support_team)
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(pk=Ticket.pk_from_reference(response.json()["reference"]))
    assert ticket.customer_id == wang.pk and not ticket.discloses_customer  # linked, no duplicate
    shown = response.json()["customer"]
    assert shown["id"] is None and shown["tier"] is None
    assert shown["phone"] == "139******78" and shown["name"].startswith("王") and "*" in shown["name"]
    for url in (f"{TICKETS}{ticket.reference}/", f"{TICKETS}{ticket.reference}/messages/", TICKETS,
                f"{CUSTOMERS}{wang.pk}/tickets/"):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert not [s for s in SECRETS if s in answer.content.decode()], url
    assert client.get(f"{CUSTOMERS}{wang.pk}/").status_code == 404
    assert wang.pk not in [row["id"] for row in client.get(CUSTOMERS).json()["results"]]
    patched = client.patch(f"{CUSTOMERS}{wang.pk}/", {"name": "改名"}, content_type="application/json")
    assert patched.status_code == 404
    after = Customer.objects.get(pk=wang.pk)
    assert (after.name, after.tier, after.email, after.phone) == (NAME, "vip", EMAIL, PHONE)  # nothing filled in or changed


def test_the_admin_ticket_page_and_list_mask_a_customer_the_agent_may_not_see(client, alice, wang):
    client.force_login(alice.user)
    reference = _create(client, {"phone": PHONE}, wang.support_team).json()["reference"]
    ticket = Ticket.objects.get(pk=Ticket.pk_from_reference(reference))
    for url in (reverse("admin:tickets_ticket_change", args=[ticket.pk]), reverse("admin:tickets_ticket_changelist")):
        page = client.get(url)
        assert page.status_code == 200
        assert not [s for s in SECRETS if s in page.content.decode()], url
    assert client.get(reverse("admin:helpdesk_customer_change", args=[wang.pk])).status_code in (302, 404)


def test_billing_still_sees_their_customer_and_a_customer_the_agent_sees_is_shown_in_full(client, alice, bob, wang):
    client.force_login(alice.user)
    _create(client, {"phone": PHONE}, wang.support_team)
    client.force_login(bob.user)
    assert client.get(f"{CUSTOMERS}{wang.pk}/").json()["name"] == NAME
    own = _create(client, {"phone": PHONE}, bob.teams.get()).json()
    assert own["customer"]["id"] == wang.pk and own["customer"]["name"] == NAME


def test_naming_a_customer_by_an_id_the_agent_may_not_see_is_the_same_as_an_unknown_id(client, alice, wang):
    client.force_login(alice.user)
    before = Ticket.objects.count()
    unseen = _create(client, {"id": wang.pk})
    missing = _create(client, {"id": 987654})
    assert unseen.status_code == missing.status_code == 400
    assert unseen.json()["error"]["code"] == missing.json()["error"]["code"]
    assert unseen.content.decode().replace(str(wang.pk), "N") == missing.content.decode().replace("987654", "N")
    assert Ticket.objects.count() == before


def test_the_admin_add_form_refuses_a_customer_the_agent_may_not_see(client, alice, wang, support_team):
    client.force_login(alice.user)
    form = {"customer": wang.pk, "subject": "来电", "channel": "phone", "priority": "normal", "team": support_team.pk,
            "message": "客户来电", "tags": []}
    response = client.post(reverse("admin:tickets_ticket_add"), form)
    assert response.status_code == 200 and "customer" in response.context["adminform"].form.errors
    assert not Ticket.objects.filter(customer=wang, team=support_team).exists()


def test_a_message_pushed_by_a_caller_who_may_not_see_the_customer_discloses_nothing(alice, wang):
    """The ingest endpoint needs tickets.ingest_messages (integrations and administrators, who see
    every customer); the intake rule is the same for anyone else who is given it."""
    result = intake.ingest_message(channel="wechat", conversation_id="wx-conv-1", customer={"phone": PHONE},
                                   body="你好", actor=alice.user)
    assert result.ticket.customer_id == wang.pk and not result.ticket.discloses_customer
    follow_up = intake.ingest_message(channel="wechat", conversation_id="wx-conv-1", customer={"phone": PHONE},
                                      body="还在吗", actor=alice.user)
    assert follow_up.ticket.pk == result.ticket.pk
    integration = intake.ingest_message(channel="wechat", conversation_id="wx-conv-2", customer={"phone": PHONE},
                                        body="你好", actor=None)
    assert integration.ticket.discloses_customer
