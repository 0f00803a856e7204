"""Searching is no oracle: a role that reads masked text finds only what it reads.

A ticket's subject and conversation hold a phone, an email, an ID card, a bank card and an order
number (tickets.queries.search). For an inspector or a trainer, searching any of them in the
admin's ticket list or the API finds what a random value of the same shape finds: nothing;
the agent, who reads them as written, finds the ticket by each, so the world really holds them.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ..factories import CustomerFactory, MessageFactory, TicketFactory

pytestmark = pytest.mark.django_db

SECRETS = {
    "phone": ("13912345678", "13987650000"),
    "phone typed": ("139 1234 5678", "139 8765 0000"),
    "email": ("nana.ouyang@pii-example.org", "zz.random@pii-example.org"),
    "id card": ("11010519880808123X", "32010219770101456X"),
    "bank card": ("6222021234567890123", "6222029876543210987"),
    "order number": ("DD2026112312345678", "DD2026010100000001"),
}
IN_SUBJECT = ("phone", "order number")


@pytest.fixture
def ticket(support_team):
    customer = CustomerFactory(name="欧阳娜娜", phone="13700000000", email="other@example.com")
    ticket = TicketFactory(team=support_team, customer=customer,
                           subject=f"退款 {SECRETS['phone'][0]} 订单号 {SECRETS['order number'][0]}")
    MessageFactory(ticket=ticket, author_kind="customer",
                   body=f"手机 {SECRETS['phone typed'][0]}，邮箱 {SECRETS['email'][0]}，身份证 {SECRETS['id card'][0]}，"
                        f"银行卡 {SECRETS['bank card'][0]}")
    TicketFactory(team=support_team, customer=customer, subject="别的问题")
    return ticket


def admin_found(client, term: str) -> set[int]:
    response = client.get(reverse("admin:tickets_ticket_changelist"), {"q": term})
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def api_found(client, term: str) -> set[str]:
    response = client.get("/api/v1/tickets/", {"q": term})
    assert response.status_code == 200
    return {row["reference"] for row in response.json()["results"]}


@pytest.mark.parametrize("role", ["iris", "tom"])
@pytest.mark.parametrize("kind", list(SECRETS))
def test_an_inspector_or_trainer_finds_a_masked_value_no_more_than_a_random_one(client, request, ticket, alice, role, kind):
    value, random_value = SECRETS[kind]
    client.force_login(request.getfixturevalue(role))
    assert admin_found(client, value) == admin_found(client, random_value) == set()
    assert api_found(client, value) == api_found(client, random_value) == set()
    # Part of the value is no way round it: the digits the page masks are not searchable.
    assert admin_found(client, value[4:9]) == set()
    # The agent reads it as written and finds the ticket by it (the subject only, in the API).
    client.force_login(alice.user)
    assert admin_found(client, value) == {ticket.pk}
    assert api_found(client, value) == ({ticket.reference} if kind in IN_SUBJECT else set())


def test_an_inspector_finds_the_text_they_read_masked_parts_included(client, iris, ticket):
    client.force_login(iris)
    assert admin_found(client, "退款") == {ticket.pk}
    assert api_found(client, "退款") == {ticket.reference}
    assert admin_found(client, "139******78") == {ticket.pk}  # as the page shows it
    assert api_found(client, ticket.reference) == {ticket.reference}


def test_an_inspectors_search_costs_the_same_queries_for_few_or_many_matches(client, iris, ticket, support_team):
    client.force_login(iris)
    api_found(client, "退款")
    with CaptureQueriesContext(connection) as few:
        api_found(client, "退款")
    for n in range(8):
        other = TicketFactory(team=support_team, subject=f"退款 {n}")
        MessageFactory(ticket=other, body=f"退款进度 1390000{n:04d}")
    with CaptureQueriesContext(connection) as many:
        assert len(api_found(client, "退款")) == 9
    assert len(many.captured_queries) == len(few.captured_queries)
