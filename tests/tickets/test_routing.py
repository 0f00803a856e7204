"""Routing: rules pick team and skill, assignment picks the agent, the queue waits for a seat."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group

from helpdesk import roles
from helpdesk.errors import DomainError
from helpdesk.models import Agent, Channel, Customer
from tickets import routing, services
from tickets.models import Category, RoutingRule, Ticket

from ..factories import (
    AgentFactory,
    CustomerFactory,
    SkillFactory,
    TeamFactory,
    UserFactory,
)

S = Ticket.Status
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def chat(body="在吗", channel=Channel.WEB_CHAT, tier="standard", category=None, team=None, subject="咨询") -> Ticket:
    customer = CustomerFactory(tier=tier)
    return services.open_ticket(
        customer=customer, subject=subject, channel=channel, body=body, category=category, team=team
    )


def online(team, name, *, skills=(), max_concurrent=5, last_assigned_at=None) -> Agent:
    agent = AgentFactory(user=UserFactory(username=name), teams=[team], max_concurrent=max_concurrent)
    agent.skills.add(*skills)
    Agent.objects.filter(pk=agent.pk).update(presence=Agent.Presence.ONLINE, last_assigned_at=last_assigned_at)
    agent.refresh_from_db()
    return agent


def rule(team, position=0, **fields) -> RoutingRule:
    categories = fields.pop("categories", [])
    made = RoutingRule.objects.create(name=f"rule {position}", position=position, team=team, **fields)
    made.categories.set(categories)
    routing.forget_rules()
    return made


@pytest.fixture
def sales(db):
    return TeamFactory(name="Sales")


@pytest.fixture
def after_sales():
    return Category.objects.get(code="after_sales")


# --- rules ------------------------------------------------------------------------------


def test_a_ticket_no_rule_matches_has_no_team_and_waits(support_team):
    rule(support_team, channels=[Channel.EMAIL])
    ticket = chat()
    assert ticket.team is None and ticket.assignee is None and ticket.status == S.NEW


def test_each_condition_of_a_rule_must_hold(support_team, sales, after_sales):
    rule(sales, position=0, channels=[Channel.WEB_CHAT], tiers=["vip"], categories=[after_sales])
    rule(support_team, position=1)
    assert chat(tier="vip", category=after_sales).team == sales
    assert chat(tier="standard", category=after_sales).team == support_team  # tier differs
    assert chat(tier="vip", category=None).team == support_team  # no category
    assert chat(tier="vip", category=after_sales, channel=Channel.EMAIL).team == support_team  # channel differs


def test_rules_are_tried_in_order_and_inactive_ones_skipped(support_team, sales, billing_team):
    rule(billing_team, position=0, is_active=False)
    rule(sales, position=1)
    rule(support_team, position=2)
    assert chat().team == sales


def test_keywords_in_the_first_message_route_and_suggest_a_category_when_none_was_given(support_team, sales):
    refund = Category.objects.get(code="refund") if Category.objects.filter(code="refund").exists() else None
    refund = refund or Category.objects.filter(parent__isnull=False).first()
    skill = SkillFactory(code="refunds")
    rule(sales, position=0, keywords="退款\nRefund", skill=skill, suggested_category=refund)
    rule(support_team, position=1)
    ticket = chat(body="我想申请 REFUND 可以吗")
    assert (ticket.team, ticket.required_skill, ticket.category) == (sales, skill, refund)
    other = chat(body="物流到哪了")
    assert (other.team, other.required_skill, other.category) == (support_team, None, None)
    given = chat(body="退款", category=Category.objects.get(code="after_sales"))
    assert given.category.code == "after_sales"  # the sender's category is kept


def test_a_suggested_category_raises_the_priority_to_its_minimum(support_team):
    stolen = Category.objects.filter(minimum_priority="urgent").first()
    rule(support_team, keywords="被盗", suggested_category=stolen)
    assert chat(body="我的账号被盗了").priority == "urgent"


@pytest.mark.parametrize(
    ("at", "window", "routed"),
    [
        (local(2026, 11, 24, 10), (time(9), time(18)), True),
        (local(2026, 11, 24, 18), (time(9), time(18)), False),  # the end is exclusive
        (local(2026, 11, 24, 23), (time(22), time(6)), True),  # a night shift crosses midnight
        (local(2026, 11, 25, 5, 59), (time(22), time(6)), True),
        (local(2026, 11, 25, 12), (time(22), time(6)), False),
    ],
)
def test_a_time_window_in_local_time(support_team, sales, at, window, routed):
    rule(sales, position=0, starts_at=window[0], ends_at=window[1])
    rule(support_team, position=1)
    with time_machine.travel(at, tick=False):
        assert chat().team == (sales if routed else support_team)


def test_weekdays_limit_a_rule(support_team, sales):
    rule(sales, position=0, weekdays=[6, 7])
    rule(support_team, position=1)
    with time_machine.travel(local(2026, 11, 28, 10), tick=False):  # a Saturday
        assert chat().team == sales
    with time_machine.travel(local(2026, 11, 30, 10), tick=False):  # a Monday
        assert chat().team == support_team


def test_a_team_the_sender_named_is_kept(support_team, sales):
    rule(sales)
    assert chat(team=support_team).team == support_team


# --- assignment -------------------------------------------------------------------------


def test_only_online_agents_of_the_team_with_the_skill_and_a_free_seat_are_given_tickets(support_team, sales):
    skill = SkillFactory(code="refunds")
    rule(support_team, skill=skill)
    unskilled = online(support_team, "unskilled")
    full = online(support_team, "full", skills=[skill], max_concurrent=1)
    chat(team=sales)  # another team's agent is not considered below
    services.assign_ticket(ticket=chat(team=sales), agent=full)  # full's one seat is taken
    away = online(support_team, "away", skills=[skill])
    Agent.objects.filter(pk=away.pk).update(presence=Agent.Presence.AWAY)
    ticket = chat()
    assert ticket.assignee is None and ticket.status == S.NEW  # nobody fits: it waits
    fits = online(support_team, "fits", skills=[skill])
    assert chat().assignee == fits
    assert unskilled.assigned_tickets.count() == 0


def test_least_loaded_first_then_idle_longest(support_team):
    rule(support_team)
    now = datetime.now(tz=SHANGHAI)
    busy = online(support_team, "busy", last_assigned_at=now - timedelta(hours=5))
    services.assign_ticket(ticket=chat(team=TeamFactory()), agent=busy)
    recent = online(support_team, "recent", last_assigned_at=now - timedelta(minutes=1))
    idle = online(support_team, "idle", last_assigned_at=now - timedelta(hours=1))
    assert chat().assignee == idle  # busy holds one; of the two with none, idle waited longest
    assert chat().assignee == recent  # idle's clock restarted: recent has waited longer now
    assert chat().assignee == busy  # all hold one; busy was assigned longest ago


def test_vip_customers_go_to_vip_skilled_agents_first(support_team):
    vip = SkillFactory(code=routing.VIP_SKILL)
    rule(support_team)
    plain = online(support_team, "plain")
    vip_agent = online(support_team, "vip-agent", skills=[vip])
    services.assign_ticket(ticket=chat(team=TeamFactory()), agent=vip_agent)  # more loaded than plain
    assert chat(tier=Customer.Tier.VIP).assignee == vip_agent
    assert chat(tier=Customer.Tier.STANDARD).assignee == plain


# --- the queue and presence ---------------------------------------------------------------


def test_an_agent_coming_online_takes_the_waiting_tickets_oldest_first_up_to_capacity(support_team):
    rule(support_team)
    first, second, third = chat(), chat(), chat()
    agent = AgentFactory(teams=[support_team], max_concurrent=2)
    routing.set_presence(agent=agent, presence=Agent.Presence.ONLINE)
    held = set(Ticket.objects.filter(assignee=agent).values_list("pk", flat=True))
    assert held == {first.pk, second.pk}
    assert Ticket.objects.get(pk=third.pk).assignee is None


def test_solving_a_ticket_frees_a_seat_for_the_next_waiting_one(support_team, django_capture_on_commit_callbacks):
    rule(support_team)
    agent = online(support_team, "solo", max_concurrent=1)
    held, waiting = chat(), chat()
    assert (held.assignee, waiting.assignee) == (agent, None)
    with django_capture_on_commit_callbacks(execute=True):
        services.post_message(ticket=held, author_kind="agent", agent=agent, body="已处理", status_after=S.SOLVED)
    waiting.refresh_from_db()
    assert waiting.assignee == agent and waiting.status == S.OPEN


def test_going_offline_puts_untouched_tickets_back_and_keeps_answered_ones(support_team, django_capture_on_commit_callbacks):
    rule(support_team)
    leaving = online(support_team, "leaving")
    answered, untouched = chat(), chat()
    services.post_message(ticket=answered, author_kind="agent", agent=leaving, body="您好")
    staying = online(support_team, "staying")
    with django_capture_on_commit_callbacks(execute=True):
        routing.set_presence(agent=leaving, presence=Agent.Presence.OFFLINE)
    assert Ticket.objects.get(pk=answered.pk).assignee == leaving
    assert Ticket.objects.get(pk=untouched.pk).assignee == staying  # back in the queue, taken at once
    assert Ticket.objects.get(pk=untouched.pk).history.filter(history_change_reason="offline").exists()


def test_beat_assigns_tickets_left_waiting_when_a_capacity_is_raised(support_team):
    from tickets.tasks import assign_waiting_tickets_task

    rule(support_team)
    agent = online(support_team, "agent", max_concurrent=1)
    chat()
    waiting = chat()
    assert waiting.assignee is None
    Agent.objects.filter(pk=agent.pk).update(max_concurrent=2)  # in the admin: no routing trigger
    assert assign_waiting_tickets_task() == 1
    assert Ticket.objects.get(pk=waiting.pk).assignee == agent


def test_a_ticket_needing_a_skill_nobody_online_has_does_not_block_the_rest_of_the_queue(support_team):
    skill = SkillFactory(code="legal")
    rule(support_team, position=0, keywords="律师", skill=skill)
    rule(support_team, position=1)
    needs_skill = chat(body="我要找律师")
    plain = chat()
    agent = AgentFactory(teams=[support_team])
    routing.set_presence(agent=agent, presence=Agent.Presence.ONLINE)
    assert Ticket.objects.get(pk=needs_skill.pk).assignee is None
    assert Ticket.objects.get(pk=plain.pk).assignee == agent


@time_machine.travel(local(2026, 11, 24, 10), tick=False)  # a Tuesday morning: no outside-hours notice to write
def test_routing_a_new_ticket_costs_a_bounded_number_of_queries(support_team, django_assert_max_num_queries):
    rule(support_team)
    for n in range(5):
        online(support_team, f"agent{n}")
    chat()  # rules read once for the process
    customer = CustomerFactory()
    with django_assert_max_num_queries(12):  # the open itself, plus candidates, the lock, the count, the idle clock
        ticket = services.open_ticket(customer=customer, subject="s", channel=Channel.WEB_CHAT, body="在吗")
    assert ticket.assignee is not None


# --- claims -------------------------------------------------------------------------------


def test_claiming_a_ticket_someone_holds_is_refused(support_team, alice, lena):
    ticket = chat(team=support_team)
    routing.claim_ticket(ticket=ticket, agent=alice)
    assert routing.claim_ticket(ticket=ticket, agent=alice).assignee == alice  # again: harmless
    with pytest.raises(DomainError) as refused:
        routing.claim_ticket(ticket=ticket, agent=lena)
    assert refused.value.code == "already_assigned"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_agents_claiming_one_ticket_at_the_same_moment_exactly_one_gets_it(support_team):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite runs one writer at a time)")
    first, second = AgentFactory(teams=[support_team]), AgentFactory(teams=[support_team])
    for attempt in range(5):
        ticket = chat(team=support_team)
        start = threading.Barrier(2)
        outcomes = {}

        def claim(agent):
            try:
                start.wait()
                routing.claim_ticket(ticket=ticket, agent=agent)
                outcomes[agent.pk] = "won"
            except DomainError as refused:
                outcomes[agent.pk] = refused.code
            finally:
                connections.close_all()

        threads = [threading.Thread(target=claim, args=(agent,)) for agent in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes.values()) == ["already_assigned", "won"], attempt
        winner = next(pk for pk, outcome in outcomes.items() if outcome == "won")
        assert Ticket.objects.get(pk=ticket.pk).assignee_id == winner
        assert Ticket.objects.get(pk=ticket.pk).history.filter(history_change_reason="claimed").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_tickets_arriving_at_once_never_take_more_than_an_agents_last_seat(support_team):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite runs one writer at a time)")
    rule(support_team)
    agent = online(support_team, "one-seat", max_concurrent=1)
    start = threading.Barrier(2)

    def arrive(_):
        try:
            start.wait()
            chat()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=arrive, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Ticket.objects.filter(assignee=agent).count() == 1
    assert Ticket.objects.filter(assignee=None, team=support_team).count() == 1


# --- API and admin ------------------------------------------------------------------------


def agent_api(agent):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(agent.user)
    return client


def test_claim_through_the_api(support_team, alice, lena):
    ticket = chat(team=support_team)
    response = agent_api(alice).post(f"/api/v1/tickets/{ticket.reference}/claim")
    assert response.status_code == 200 and response.json()["assignee"]["username"] == "alice"
    response = agent_api(lena).post(f"/api/v1/tickets/{ticket.reference}/claim")
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_assigned"


def test_an_agent_going_online_through_the_api_takes_waiting_tickets(support_team, alice):
    rule(support_team)
    waiting = chat()
    response = agent_api(alice).patch("/api/v1/agents/me", {"presence": "online"}, format="json")
    assert response.status_code == 200 and response.json()["presence"] == "online"
    assert Ticket.objects.get(pk=waiting.pk).assignee == alice


def test_an_agent_sets_their_own_presence_in_the_admin_and_only_their_own(client, support_team, alice, lena):
    client.force_login(alice.user)
    changelist = "/admin/helpdesk/agent/"
    client.post(changelist, {"action": "set_online", "_selected_action": [alice.pk, lena.pk]})
    assert Agent.objects.get(pk=alice.pk).presence == Agent.Presence.ONLINE
    assert Agent.objects.get(pk=lena.pk).presence == Agent.Presence.OFFLINE


def test_a_lead_sets_a_team_agents_presence_in_the_admin(client, support_team, alice, lena):
    client.force_login(lena.user)
    client.post("/admin/helpdesk/agent/", {"action": "set_busy", "_selected_action": [alice.pk]})
    assert Agent.objects.get(pk=alice.pk).presence == Agent.Presence.BUSY


def test_administrators_edit_routing_rules_in_the_admin_with_clear_errors(client, support_team):
    admin = UserFactory(username="root")
    admin.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    client.force_login(admin)
    response = client.post(
        "/admin/tickets/routingrule/add/",
        {"name": "night", "position": 0, "is_active": "on", "team": support_team.pk, "starts_at": "22:00"},
    )
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["ends_at"]
    response = client.post(
        "/admin/tickets/routingrule/add/",
        {"name": "night", "position": 0, "is_active": "on", "team": support_team.pk, "starts_at": "22:00",
         "ends_at": "06:00", "weekdays": ["6", "7"], "channels": ["web_chat"]},
    )
    assert response.status_code == 302
    made = RoutingRule.objects.get(name="night")
    assert (made.weekdays, made.channels) == ([6, 7], ["web_chat"])
    assert made.history.count() == 1


# --- found in review ----------------------------------------------------------------------


def test_a_ticket_anyone_can_take_is_not_starved_by_a_backlog_nobody_can_take(support_team):
    from ..factories import TicketFactory

    agent = online(support_team, "agent")
    rare = SkillFactory(code="japanese")
    old = datetime.now(tz=SHANGHAI) - timedelta(hours=2)
    for n in range(routing.QUEUE_BATCH + 5):
        TicketFactory(team=support_team, required_skill=rare, created_at=old + timedelta(seconds=n))
    plain = TicketFactory(team=support_team)
    routing.assign_all_waiting()
    assert Ticket.objects.get(pk=plain.pk).assignee == agent


def test_a_claim_counts_against_the_agents_capacity(support_team, alice):
    Agent.objects.filter(pk=alice.pk).update(max_concurrent=1)
    alice.refresh_from_db()
    routing.claim_ticket(ticket=chat(team=support_team), agent=alice)
    with pytest.raises(DomainError) as refused:
        routing.claim_ticket(ticket=chat(team=support_team), agent=alice)
    assert refused.value.code == "no_capacity"


def test_going_offline_keeps_a_conversation_a_colleague_already_answered(support_team, lena, django_capture_on_commit_callbacks):
    leaving = online(support_team, "leaving")
    ticket = chat(team=support_team)
    services.post_message(ticket=ticket, author_kind="agent", agent=lena, body="我们正在处理")
    services.assign_ticket(ticket=ticket, agent=leaving)  # lena hands it over
    with django_capture_on_commit_callbacks(execute=True):
        routing.set_presence(agent=leaving, presence=Agent.Presence.OFFLINE)
    assert Ticket.objects.get(pk=ticket.pk).assignee == leaving


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_going_offline_while_a_customer_writes_still_hands_the_ticket_back(support_team):
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite runs one writer at a time)")
    rule(support_team)
    leaving = online(support_team, "leaving")
    ticket = chat()
    assert ticket.assignee == leaving
    locked = threading.Event()

    def customer_writes():  # as post_message does: the ticket row locked for a moment
        try:
            with transaction.atomic():
                Ticket.objects.select_for_update().get(pk=ticket.pk)
                locked.set()
                threading.Event().wait(0.5)
        finally:
            connections.close_all()

    writer = threading.Thread(target=customer_writes)
    writer.start()
    locked.wait(5)
    routing.set_presence(agent=leaving, presence=Agent.Presence.OFFLINE)  # waits for the lock, skips nothing
    writer.join()
    assert Ticket.objects.get(pk=ticket.pk).assignee is None
