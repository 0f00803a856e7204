"""Who sees and changes which customer (tickets.queries.customers_visible_to), in the admin and the API.

Agents and team leads: the customers of the tickets they see, and the ones they created (so an
agent can add a caller and open their ticket); roles that see every ticket: every customer.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import Customer
from tickets.queries import customers_visible_to

from ..factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"


@pytest.fixture
def customers(support_team, billing_team):
    ours = CustomerFactory(name="我方客户")
    theirs = CustomerFactory(name="他方客户")
    both = CustomerFactory(name="两边的客户")
    TicketFactory(team=support_team, customer=ours)
    TicketFactory(team=billing_team, customer=theirs)
    TicketFactory(team=billing_team, customer=both)
    TicketFactory(team=support_team, customer=both)
    return {"ours": ours, "theirs": theirs, "both": both, "nobody's": CustomerFactory(name="没有工单的客户")}


def seen(user, customers) -> set[str]:
    ids = set(customers_visible_to(user).values_list("pk", flat=True))
    return {name for name, customer in customers.items() if customer.pk in ids}


def created_by(user, name: str) -> Customer:
    customer = Customer(name=name)
    customer._history_user = user
    customer.save()
    return customer


def test_an_agent_sees_the_customers_of_the_tickets_they_see(alice, lena, customers):
    assert seen(alice.user, customers) == seen(lena.user, customers) == {"ours", "both"}


def test_an_agent_sees_a_customer_of_another_team_once_a_ticket_of_theirs_is_assigned_to_them(alice, billing_team, customers):
    TicketFactory(team=billing_team, customer=customers["theirs"], assignee=alice)
    assert seen(alice.user, customers) == {"ours", "theirs", "both"}


def test_an_agent_sees_the_customers_they_created_and_not_their_colleagues(alice, bob, customers):
    customers["mine"] = created_by(alice.user, "新来电的客户")
    customers["bob's"] = created_by(bob.user, "别人录入的客户")
    assert seen(alice.user, customers) == {"ours", "both", "mine"}


@pytest.mark.parametrize("persona", ["ada", "iris", "tom"])
def test_roles_that_see_every_ticket_see_every_customer(persona, customers, request):
    assert seen(request.getfixturevalue(persona), customers) == set(customers)


def test_anyone_else_sees_none(olga, alice, customers):
    assert seen(olga, customers) == set()
    alice.user.is_active = False
    assert seen(alice.user, customers) == set()


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_lists_and_opens_only_the_agents_customers(client, alice, customers):
    client.force_login(alice.user)
    listed = client.get(reverse("admin:helpdesk_customer_changelist")).context["cl"].result_list
    assert {c.name for c in listed} == {"我方客户", "两边的客户"}
    assert client.get(reverse("admin:helpdesk_customer_change", args=[customers["ours"].pk])).status_code == 200
    for other in (customers["theirs"], customers["nobody's"]):
        page = client.get(reverse("admin:helpdesk_customer_change", args=[other.pk]), follow=True)
        assert page.redirect_chain and other.name not in page.content.decode()  # "does not exist"
        assert client.get(reverse("admin:helpdesk_customer_history", args=[other.pk])).status_code == 404
    post = client.post(reverse("admin:helpdesk_customer_change", args=[customers["theirs"].pk]), {"name": "改名"})
    assert post.status_code == 302
    assert Customer.objects.get(pk=customers["theirs"].pk).name == "他方客户"


def test_an_agent_adds_a_caller_in_the_admin_then_finds_them_for_a_new_ticket(client, alice, customers):
    client.force_login(alice.user)
    form = {"name": "新客户张三", "phone": "13700000000", "email": "", "external_id": "", "tier": "standard",
            "language": "zh-hans", "first_seen_at_0": "2026-03-01", "first_seen_at_1": "10:00:00",
            "identities-TOTAL_FORMS": "0", "identities-INITIAL_FORMS": "0"}
    assert client.post(reverse("admin:helpdesk_customer_add"), form).status_code == 302
    customer = Customer.objects.get(name="新客户张三")
    assert client.get(reverse("admin:helpdesk_customer_change", args=[customer.pk])).status_code == 200
    found = client.get(reverse("admin:autocomplete"), {
        "term": "新客户", "app_label": "tickets", "model_name": "ticket", "field_name": "customer"}).json()
    assert [row["id"] for row in found["results"]] == [str(customer.pk)]
    other = client.get(reverse("admin:autocomplete"), {
        "term": "他方", "app_label": "tickets", "model_name": "ticket", "field_name": "customer"}).json()
    assert other["results"] == []


def test_the_admin_customer_list_costs_the_same_queries_for_few_or_many_customers(alice, support_team):
    client = Client()
    client.force_login(alice.user)
    url = reverse("admin:helpdesk_customer_changelist")
    TicketFactory(team=support_team)
    client.get(url)  # warm: content types, translations
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for _n in range(6):
        TicketFactory(team=support_team)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(url).context["cl"].result_list) == 7
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


# --- the API --------------------------------------------------------------------------------


def test_the_api_lists_reads_and_changes_only_the_agents_customers(client, alice, customers):
    client.force_login(alice.user)
    listed = client.get(CUSTOMERS).json()["results"]
    assert {row["name"] for row in listed} == {"我方客户", "两边的客户"}
    assert client.get(f"{CUSTOMERS}{customers['ours'].pk}/").status_code == 200
    for other in (customers["theirs"], customers["nobody's"]):
        assert client.get(f"{CUSTOMERS}{other.pk}/").status_code == 404
        patched = client.patch(f"{CUSTOMERS}{other.pk}/", {"name": "改名"}, content_type="application/json")
        assert patched.status_code == 404 and other.name not in patched.content.decode()
    assert Customer.objects.get(pk=customers["theirs"].pk).name == "他方客户"
    ours = client.patch(f"{CUSTOMERS}{customers['ours'].pk}/", {"tier": "vip"}, content_type="application/json")
    assert ours.status_code == 200 and ours.json()["tier"] == "vip"


def test_an_agent_creates_a_customer_through_the_api_and_keeps_seeing_them(client, alice, bob):
    client.force_login(alice.user)
    created = client.post(CUSTOMERS, {"name": "电话里的客户", "phone": "13600000000"}, content_type="application/json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client.get(f"{CUSTOMERS}{pk}/").status_code == 200
    assert client.patch(f"{CUSTOMERS}{pk}/", {"tier": "vip"}, content_type="application/json").status_code == 200
    client.force_login(bob.user)
    assert client.get(f"{CUSTOMERS}{pk}/").status_code == 404


def test_the_api_customer_list_costs_the_same_queries_for_one_or_many_customers(
    client, alice, support_team, django_assert_num_queries
):
    client.force_login(alice.user)
    TicketFactory(team=support_team)
    client.get(CUSTOMERS)
    with django_assert_num_queries(6) as one:  # session, user, two permission reads, roles, the page
        assert len(client.get(CUSTOMERS).json()["results"]) == 1
    for _n in range(6):
        TicketFactory(team=support_team)
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(client.get(CUSTOMERS).json()["results"]) == 7
