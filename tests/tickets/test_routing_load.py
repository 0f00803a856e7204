"""An agent's load is counted up to their capacity and no further, with the same decisions.

Routing runs on every new ticket: the load of each online agent of the team must cost the same
whether they hold 3 open tickets or 30,000 (issue 28).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.models import Agent, Channel
from tickets import routing, services
from tickets.models import Ticket

from ..factories import AgentFactory, CustomerFactory, UserFactory

S = Ticket.Status
NOW = timezone.now()


def hold(agent: Agent | None, team, customer, statuses: list[str]) -> None:
    Ticket.objects.bulk_create(
        Ticket(subject="s", customer=customer, channel=Channel.WEB_CHAT, team=team, assignee=agent, status=status)
        for status in statuses
    )


def online(team, *, max_concurrent: int, last_assigned_at=None, presence=Agent.Presence.ONLINE) -> Agent:
    agent = AgentFactory(user=UserFactory(), teams=[team], max_concurrent=max_concurrent)
    Agent.objects.filter(pk=agent.pk).update(presence=presence, last_assigned_at=last_assigned_at)
    agent.refresh_from_db()
    return agent


def exact_load(agent: Agent) -> int:
    return Ticket.objects.filter(assignee=agent, status__in=routing.LOAD_STATUSES).count()


agents_strategy = st.lists(
    st.tuples(
        st.integers(1, 4),  # capacity
        st.sampled_from([Agent.Presence.ONLINE, Agent.Presence.ONLINE, Agent.Presence.AWAY, Agent.Presence.OFFLINE]),
        st.sampled_from([None, 0, 60, 120]),  # idle since (seconds before NOW), None: never assigned
    ),
    min_size=1,
    max_size=4,
)
tickets_strategy = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(S.values)), max_size=30)  # 4: nobody


@pytest.fixture
def four(support_team) -> list[Agent]:
    """Four agents made once for all examples (a password hash each is slow); examples set their fields."""
    return [online(support_team, max_concurrent=1) for _ in range(4)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agents=agents_strategy, tickets=tickets_strategy)
def test_the_bounded_load_is_the_exact_count_up_to_capacity_and_routing_decides_the_same(
    support_team, four, agents, tickets
):
    customer = CustomerFactory()
    with transaction.atomic():  # each example rolls back its fields and tickets
        for agent, (capacity, presence, idle) in zip(four, agents + [(1, Agent.Presence.OFFLINE, None)] * 4):
            agent.max_concurrent, agent.presence = capacity, presence
            agent.last_assigned_at = None if idle is None else NOW - timedelta(seconds=idle)
            agent.save(update_fields=["max_concurrent", "presence", "last_assigned_at"])
        made = four[: len(agents)]
        for index, status in tickets:
            hold(made[index] if index < len(made) else None, support_team, customer, [status])
        exact = {agent.pk: exact_load(agent) for agent in made}

        bounded = dict(Agent.objects.filter(pk__in=exact).annotate(load=routing.load()).values_list("pk", "load"))
        assert bounded == {a.pk: min(exact[a.pk], a.max_concurrent + 1) for a in made}

        free = [a for a in made if a.presence == Agent.Presence.ONLINE and exact[a.pk] < a.max_concurrent]
        free.sort(key=lambda a: (exact[a.pk], a.last_assigned_at is not None, a.last_assigned_at or NOW, a.pk))
        assert list(routing.candidates(support_team.pk, None, vip=False)) == free
        assert [routing.has_seat(a) for a in made] == [exact[a.pk] < a.max_concurrent for a in made]
        transaction.set_rollback(True)


def ticket_rows_read() -> int:
    """Rows of tickets_ticket this transaction has read so far (sequential and through indexes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = 'tickets_ticket'"
        )
        return cursor.fetchone()[0]


def rows_read_routing(team, agents: list[Agent]) -> int:
    before = ticket_rows_read()
    list(routing.candidates(team.pk, None, vip=False))
    routing._take_seat(team.pk, None, vip=False)  # the second count, under the locks
    for agent in agents:
        routing.has_seat(agent)  # a claim's count
    return ticket_rows_read() - before


def test_routing_reads_as_many_tickets_and_makes_as_many_queries_whatever_the_agents_hold(
    support_team, django_assert_num_queries
):
    if connection.vendor != "postgresql":
        pytest.skip("counts the rows PostgreSQL reads; SQLite counts all of them and caps the count")
    customer = CustomerFactory()
    agents = [online(support_team, max_concurrent=3) for _ in range(3)]
    with connection.cursor() as cursor:
        # The test tables are a few pages: let the planner take the index (and stop) as it does
        # on a big table instead of reading the whole heap, which it would prefer here.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
    for agent in agents:
        hold(agent, support_team, customer, [S.OPEN] * 4 + [S.SOLVED] * 3)  # one over capacity
    # the two reads of the counters; candidates; take-seat's pick (nobody); 3 x (lock, count)
    with django_assert_num_queries(2 + 1 + 1 + 3 * 2):
        few = rows_read_routing(support_team, agents)

    for agent in agents:
        hold(agent, support_team, customer, [S.OPEN, S.NEW] * 100 + [S.SOLVED] * 200)
    with django_assert_num_queries(2 + 1 + 1 + 3 * 2):
        many = rows_read_routing(support_team, agents)
    assert many <= few + 3  # not 200 more an agent per count: each count stops at capacity + 1
    assert routing._take_seat(support_team.pk, None, vip=False) is None  # all full
    assert not any(routing.has_seat(agent) for agent in agents)


def test_a_new_ticket_still_goes_to_the_least_loaded_agent_under_capacity(support_team):
    from .test_routing import rule

    rule(support_team)
    customer = CustomerFactory()
    busy, lighter, full = (online(support_team, max_concurrent=n) for n in (5, 5, 2))
    hold(busy, support_team, customer, [S.OPEN] * 4 + [S.SOLVED] * 50)
    hold(lighter, support_team, customer, [S.NEW] * 2 + [S.PENDING] * 50)
    hold(full, support_team, customer, [S.OPEN] * 40)
    ticket = services.open_ticket(customer=customer, subject="s", channel=Channel.WEB_CHAT, body="在吗")
    assert ticket.assignee == lighter and ticket.status == S.OPEN
