from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import Channel
from tickets import services
from tickets.models import Message, Ticket

from ..factories import CustomerFactory, MessageFactory, TicketFactory

S = Ticket.Status
pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:tickets_ticket_changelist")


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def make_tickets(n, team, **kwargs):
    tickets = TicketFactory.create_batch(n, team=team, **kwargs)
    for ticket in tickets:
        MessageFactory(ticket=ticket)
        services.add_tags(ticket=ticket, names=["加急"])
    return tickets


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_ticket_list_costs_the_same_queries_for_3_rows_or_40(client, alice, support_team):
    client.force_login(alice.user)
    make_tickets(3, support_team, assignee=alice)
    few = count_queries(client, CHANGELIST)
    make_tickets(37, support_team, assignee=alice)
    many = count_queries(client, CHANGELIST)
    assert many == few


def test_an_agent_lists_only_their_teams_tickets(client, alice, support_team, billing_team):
    mine = TicketFactory(team=support_team, subject="我的工单")
    TicketFactory(team=billing_team, subject="别人的工单")
    client.force_login(alice.user)
    page = client.get(CHANGELIST).content.decode()
    assert mine.reference in page and "别人的工单" not in page


def test_an_agent_cannot_open_another_teams_ticket(client, alice, billing_team):
    other = TicketFactory(team=billing_team)
    client.force_login(alice.user)
    response = client.get(change_url(other))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert client.post(reverse("admin:tickets_ticket_reply", args=[other.pk]), {"body": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("term", "found"),
    [("T{pk:08d}", True), ("#{pk}", True), ("13812345678", True), ("包裹破损", True), ("王小明", True), ("不存在的词", False)],
)
def test_search_finds_a_ticket_by_reference_phone_message_text_or_customer(client, alice, support_team, term, found):
    customer = CustomerFactory(name="王小明", phone="13812345678")
    ticket = TicketFactory(team=support_team, customer=customer, subject="售后")
    MessageFactory(ticket=ticket, body="收到的包裹破损了")
    MessageFactory(ticket=ticket, body="包裹破损，要求换货")
    TicketFactory(team=support_team, subject="其他")
    client.force_login(alice.user)
    response = client.get(CHANGELIST, {"q": term.format(pk=ticket.pk)})
    assert response.status_code == 200
    result = list(response.context["cl"].result_list)
    assert (result == [ticket]) if found else (result == [])


@pytest.mark.parametrize(
    ("term", "found"),
    [("包裹破损", True), ("#{pk}", True), ("{pk}", True), ("13812345678", False), ("138 1234 5678", False),
     ("wang@example.com", False), ("110105198808081234", False)],
)
def test_an_inspector_finds_by_text_but_cannot_confirm_contact_details_by_search(client, iris, term, found):
    ticket = TicketFactory(customer=CustomerFactory(name="王小明", phone="13812345678"), subject="售后")
    MessageFactory(ticket=ticket, body="包裹破损 13812345678 wang@example.com 110105198808081234")
    client.force_login(iris)
    response = client.get(CHANGELIST, {"q": term.format(pk=ticket.pk)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == ([ticket] if found else [])


def test_the_list_filters_by_status_channel_and_priority(client, ada, support_team):
    wanted = TicketFactory(team=support_team, status=S.PENDING, channel=Channel.EMAIL, priority="urgent")
    TicketFactory(team=support_team, status=S.OPEN, channel=Channel.EMAIL, priority="urgent")
    client.force_login(ada)
    response = client.get(CHANGELIST, {"status__exact": "pending", "channel__exact": "email", "priority__exact": "urgent"})
    assert list(response.context["cl"].result_list) == [wanted]


def test_the_ticket_page_shows_the_thread_notes_and_customer(client, alice, support_team):
    ticket = services.open_ticket(
        customer=CustomerFactory(name="李雷", phone="13900001111"), subject="退货", channel=Channel.WECHAT, body="我要退货"
    )
    Ticket.objects.filter(pk=ticket.pk).update(team=support_team)
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="已经登记", internal=True)
    client.force_login(alice.user)
    response = client.get(change_url(ticket))
    page = response.content.decode()
    assert response.status_code == 200
    assert "我要退货" in page and "已经登记" in page
    assert 'class="message author-customer"' in page
    assert 'class="message author-agent internal"' in page
    assert "13900001111" in page  # agents may see the customer's phone
    assert 'action="%s"' % reverse("admin:tickets_ticket_reply", args=[ticket.pk]) in page


def test_the_ticket_page_query_count_does_not_grow_with_the_conversation(client, alice, support_team):
    ticket = TicketFactory(team=support_team)
    MessageFactory(ticket=ticket)
    client.force_login(alice.user)
    short = count_queries(client, change_url(ticket))
    for _ in range(20):
        services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="回复")
    assert count_queries(client, change_url(ticket)) == short


def test_a_reply_from_the_ticket_page_is_sent_and_can_solve(client, alice, support_team):
    ticket = TicketFactory(team=support_team, status=S.OPEN)
    client.force_login(alice.user)
    response = client.post(
        reverse("admin:tickets_ticket_reply", args=[ticket.pk]), {"body": "已为您退款", "status_after": "solved"}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == S.SOLVED
    message = ticket.messages.get()
    assert (message.author_agent, message.is_internal, message.body) == (alice, False, "已为您退款")


def test_an_empty_reply_is_refused_with_a_form_error(client, alice, support_team):
    ticket = TicketFactory(team=support_team, status=S.OPEN)
    client.force_login(alice.user)
    response = client.post(reverse("admin:tickets_ticket_reply", args=[ticket.pk]), {"body": "   "})
    assert response.status_code == 400
    assert response.context["reply_form"].errors["body"]
    assert ticket.messages.count() == 0


def test_an_inspector_sees_the_conversation_with_customer_pii_masked_and_cannot_reply(client, iris):
    ticket = services.open_ticket(
        customer=CustomerFactory(name="韩梅梅", phone="13912345678", email="meimei@example.com"),
        subject="投诉", channel=Channel.PHONE, body="服务太差",
    )
    client.force_login(iris)
    page = client.get(change_url(ticket)).content.decode()
    assert "服务太差" in page
    assert "13912345678" not in page and "meimei@example.com" not in page and "韩梅梅" not in page
    assert "139******78" in page and "韩**" in page
    assert "reply-box" not in page
    listing = client.get(CHANGELIST).content.decode()
    assert "韩梅梅" not in listing and "韩**" in listing
    assert list(client.get(CHANGELIST, {"q": "13912345678"}).context["cl"].result_list) == []


def test_action_assign_to_me(client, alice, support_team):
    tickets = make_tickets(2, support_team)
    client.force_login(alice.user)
    client.post(CHANGELIST, {"action": "assign_to_me", "_selected_action": [t.pk for t in tickets]})
    assert set(Ticket.objects.values_list("assignee", "status")) == {(alice.pk, S.OPEN)}


def test_action_change_status_applies_the_legal_and_reports_the_illegal(client, lena, support_team):
    ok = TicketFactory(team=support_team, status=S.OPEN)
    closed = TicketFactory(team=support_team, status=S.CLOSED)
    client.force_login(lena.user)
    data = {"action": "change_status", "_selected_action": [ok.pk, closed.pk]}
    form_page = client.post(CHANGELIST, data)
    assert form_page.status_code == 200 and "status" in form_page.context["form"].fields
    response = client.post(CHANGELIST, data | {"apply": "1", "status": "solved", "reason": "批量"}, follow=True)
    ok.refresh_from_db(), closed.refresh_from_db()
    assert (ok.status, closed.status) == (S.SOLVED, S.CLOSED)
    texts = [str(m) for m in response.context["messages"]]
    assert any(closed.reference in text for text in texts)


def test_action_assign_to_and_add_tag(client, lena, bob, support_team):
    ticket = TicketFactory(team=support_team)
    client.force_login(lena.user)
    base = {"_selected_action": [ticket.pk], "apply": "1"}
    client.post(CHANGELIST, base | {"action": "assign_to", "agent": bob.pk})
    client.post(CHANGELIST, base | {"action": "add_tag", "tags": "回访，加急"})
    ticket.refresh_from_db()
    assert ticket.assignee == bob
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["加急", "回访"]


def test_an_inspector_has_no_bulk_actions(client, iris):
    TicketFactory()
    client.force_login(iris)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None
    assert "assign_to_me" not in response.content.decode()


def test_an_agent_opens_a_phone_ticket_from_the_admin(client, alice, support_team):
    customer = CustomerFactory.build()
    customer._history_user = alice.user  # the caller alice added: hers to see (customers_visible_to)
    customer.save()
    client.force_login(alice.user)
    response = client.post(
        reverse("admin:tickets_ticket_add"),
        {"customer": customer.pk, "subject": "电话咨询", "channel": "phone", "priority": "high",
         "team": support_team.pk, "assignee": alice.pk, "message": "客户来电询问发票"},
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.subject, ticket.priority, ticket.assignee, ticket.status) == ("电话咨询", "high", alice, S.OPEN)
    assert ticket.messages.get().body == "客户来电询问发票"


def test_editing_a_ticket_applies_the_assignment_rule_and_is_audited(client, lena, alice, support_team):
    ticket = TicketFactory(team=support_team, subject="旧标题")
    client.force_login(lena.user)
    response = client.post(
        change_url(ticket),
        {"subject": "新标题", "priority": "urgent", "team": support_team.pk, "assignee": alice.pk, "category": ""},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority, ticket.status) == ("新标题", "urgent", S.OPEN)
    assert ticket.history.first().history_user == lena.user


def test_the_history_panel_names_who_changed_what(client, lena, alice, support_team):
    ticket = services.open_ticket(customer=CustomerFactory(), subject="s", channel="email", body="b")
    services.update_ticket(ticket=ticket, changes={"team": support_team}, actor=alice.user)
    services.change_status(ticket=ticket, status=S.PENDING, actor=alice.user, reason="等待客户回复")
    client.force_login(lena.user)
    response = client.get(change_url(ticket), headers={"accept-language": "en"})
    (latest, *_) = response.context["recent_changes"]
    assert latest["user"] == alice.user and latest["reason"] == "等待客户回复"
    assert {"field": "status", "before": "New", "after": "Pending (waiting on customer)"} in [
        {key: str(value) for key, value in change.items()} for change in latest["fields"]
    ]
    page = response.content.decode()
    assert "等待客户回复" in page and "New → Pending (waiting on customer)" in page


def test_admin_autocomplete_finds_customers_agents_and_teams(client, ada, alice, support_team):
    CustomerFactory(name="欧阳娜娜")
    client.force_login(ada)
    for model, term, expected in [("customer", "欧阳", "欧阳娜娜"), ("assignee", "Ali", "Alice"), ("team", "Sup", "Support")]:
        response = client.get(
            reverse("admin:autocomplete"),
            {"term": term, "app_label": "tickets", "model_name": "ticket", "field_name": model},
        )
        assert response.status_code == 200
        assert [r["text"] for r in response.json()["results"]] == [expected]


def test_message_rows_keep_customer_messages_public():
    ticket = TicketFactory()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(ticket=ticket, author_kind="customer", body="x", is_internal=True)


@pytest.mark.parametrize(("language", "title", "status"), [("zh-hans", "工单", "新建"), ("en", "Tickets", "New")])
def test_the_admin_speaks_the_browsers_language_chinese_by_default(client, ada, language, title, status):
    TicketFactory(status=S.NEW)
    client.force_login(ada)
    page = client.get(CHANGELIST, headers={"accept-language": language}).content.decode()
    assert title in page and status in page


def test_the_full_history_page_opens_and_costs_the_same_queries_however_long(client, lena, support_team):
    ticket = TicketFactory(team=support_team, status=S.OPEN)
    client.force_login(lena.user)
    page = client.get(change_url(ticket)).content.decode()
    history_url = reverse("admin:tickets_ticket_history", args=[ticket.pk])
    assert history_url in page
    count_queries(client, history_url)  # warms per-process caches (content types)
    short = count_queries(client, history_url)
    for index in range(15):
        services.add_tags(ticket=ticket, names=[f"t{index}"], actor=lena.user)
        services.update_ticket(ticket=ticket, changes={"subject": f"s{index}"}, actor=lena.user)
    assert count_queries(client, history_url) == short


def test_an_agent_cannot_read_or_revert_another_teams_ticket_through_its_history(client, alice, billing_team):
    other = TicketFactory(team=billing_team, subject="别人的")
    version = other.history.first().history_id
    client.force_login(alice.user)
    assert client.get(reverse("admin:tickets_ticket_history", args=[other.pk])).status_code == 404
    url = reverse("admin:tickets_ticket_simple_history", args=[other.pk, version])
    assert client.get(url).status_code == 404
    client.post(url, {"subject": "改了", "priority": "urgent", "team": billing_team.pk})
    other.refresh_from_db()
    assert (other.subject, other.priority) == ("别人的", "normal")


def test_history_versions_are_read_only_even_for_the_tickets_team(client, lena, iris, support_team):
    ticket = TicketFactory(team=support_team, subject="原标题")
    url = reverse("admin:tickets_ticket_simple_history", args=[ticket.pk, ticket.history.first().history_id])
    for user in (lena.user, iris):
        client.force_login(user)
        assert client.get(url).status_code == 200
        assert client.post(url, {"subject": "改了", "priority": "urgent"}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.subject == "原标题"


def test_a_reply_to_a_malformed_ticket_id_is_a_404(client, alice):
    client.force_login(alice.user)
    assert client.post("/admin/tickets/ticket/abc/reply/", {"body": "x"}).status_code == 404


@pytest.mark.parametrize("persona", ["iris", "tom"])
def test_inspectors_and_trainers_reach_no_customer_page_or_lookup(client, persona, request):
    customer = CustomerFactory(name="张三丰")
    TicketFactory(customer=customer)
    client.force_login(request.getfixturevalue(persona))
    autocomplete = client.get(
        reverse("admin:autocomplete"),
        {"term": "张", "app_label": "tickets", "model_name": "ticket", "field_name": "customer"},
    )
    assert autocomplete.status_code == 403
    assert client.get(reverse("admin:helpdesk_customer_change", args=[customer.pk])).status_code == 403
    assert client.get(reverse("admin:helpdesk_customer_history", args=[customer.pk])).status_code == 403
    assert list(client.get(CHANGELIST, {"q": "张三丰"}).context["cl"].result_list) == []


def test_a_closed_ticket_cannot_be_edited_from_its_page(client, lena, support_team):
    ticket = TicketFactory(team=support_team, status=S.OPEN, subject="旧")
    client.force_login(lena.user)
    Ticket.objects.filter(pk=ticket.pk).update(status=S.CLOSED)  # closed while the form was open
    response = client.post(change_url(ticket), {"subject": "新", "priority": "normal", "team": support_team.pk})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    ticket.refresh_from_db()
    assert ticket.subject == "旧"
