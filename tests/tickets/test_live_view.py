"""The supervisor's live view: every figure computed by hand on a small day at Support."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from helpdesk.models import Agent
from tests.factories import AgentFactory, MessageFactory, TeamFactory, TicketFactory
from tickets.admin_live import clock
from tickets.live import live_view
from tickets.models import Csat, Message, SlaClock, Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
S = Ticket.Status


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _clock(ticket: Ticket, metric: str, **times) -> SlaClock:
    return SlaClock.objects.create(
        ticket=ticket, metric=metric, target_seconds=3600, started_at=at(7), **{"due_at": at(12), **times}
    )


@pytest.fixture
def day(frozen, support_team, billing_team, alice, lena, bob, settings):
    """Support's morning; comments give each ticket's part in the figures."""
    settings.TIME_ZONE = "Asia/Shanghai"
    Agent.objects.filter(pk=alice.pk).update(presence=Agent.Presence.ONLINE, max_concurrent=3)
    Agent.objects.filter(pk=lena.pk).update(presence=Agent.Presence.AWAY)
    yesterday = at(9, day=23)
    mine = {"team": support_team, "assignee": alice, "created_at": yesterday}
    # Answered: the agent replied after the customer's last message. Load 1. SLA: one clock due
    # at 09:50 (past) and one warned: the ticket counts once, as past.
    answered = TicketFactory(status=S.OPEN, last_customer_message_at=at(9), **mine)
    MessageFactory(ticket=answered, author_kind=Message.AuthorKind.AGENT, sent_at=at(9, 10))
    _clock(answered, "next_response", due_at=at(9, 50))
    _clock(answered, "resolution", warned_at=at(9, 30))
    # Waiting since 09:30 (30 min); load 2. SLA near: its warning time 09:55 has passed.
    recent = TicketFactory(status=S.OPEN, last_customer_message_at=at(9, 30), **mine)
    MessageFactory(ticket=recent, author_kind=Message.AuthorKind.AGENT, sent_at=at(9, 20))
    _clock(recent, "next_response", due_at=at(11), warn_at=at(9, 55))
    # Waiting since 08:00 (2 h): an internal note answers nobody. Load 3. SLA near: warned.
    noted = TicketFactory(status=S.NEW, last_customer_message_at=at(8), **mine)
    MessageFactory(ticket=noted, author_kind=Message.AuthorKind.AGENT, is_internal=True, sent_at=at(8, 30))
    _clock(noted, "first_response", warned_at=at(9))
    # Pending: not load, not waiting, even though the customer wrote last.
    TicketFactory(status=S.PENDING, last_customer_message_at=at(7), **mine)
    # Queue: two waiting tickets nobody holds, the oldest created at 09:00 (1 h).
    queued = TicketFactory(team=support_team, status=S.NEW, created_at=at(9))
    _clock(queued, "first_response", due_at=at(9), paused_at=at(8, 30))  # paused: not counted
    TicketFactory(team=support_team, status=S.OPEN, created_at=at(9, 45))
    solved = TicketFactory(team=support_team, status=S.SOLVED, created_at=at(8))  # not the queue
    _clock(solved, "first_response", due_at=at(9), fulfilled_at=at(8, 5))  # met: not counted
    # First responses today (calendar day in Shanghai): 1, 1, 3 and 10 minutes; mean 225 s, median 120 s.
    for created, minutes in ((at(0, 30), 1), (at(8), 1), (at(9), 3), (at(8, 30), 10)):
        TicketFactory(team=support_team, status=S.SOLVED, created_at=created,
                      first_response_at=created + timedelta(minutes=minutes))
    TicketFactory(team=support_team, status=S.SOLVED, created_at=at(23, 30, day=23),  # yesterday
                  first_response_at=at(0, 10))
    TicketFactory(team=support_team, status=S.NEW, created_at=at(7))  # no response yet (and queued: 3 in queue)
    # Ratings today for Support: 5 and 4; one from yesterday evening does not count.
    for stars, rated in ((5, at(8)), (4, at(0, 1)), (1, at(23, 59, day=23))):
        Csat.objects.create(ticket=TicketFactory(team=support_team, status=S.SOLVED), stars=stars, rated_at=rated,
                            team=support_team)
    # Billing: a rating of 1 today, nothing else.
    Csat.objects.create(ticket=TicketFactory(team=billing_team, status=S.SOLVED), stars=1, rated_at=at(9),
                        team=billing_team)


def _support(user):
    view = live_view(user, timezone.now())
    return {team.name: team for team in view.teams}


def test_it_shows_each_agents_presence_load_and_oldest_waiting_conversation(day, lena, alice):
    support = _support(lena.user)["Support"]
    agents = {agent.name: agent for agent in support.agents}
    assert list(agents) == ["Alice", "Lena"]
    assert (agents["Alice"].presence, agents["Alice"].load, agents["Alice"].capacity) == ("online", 3, 3)
    assert agents["Alice"].waiting == 2
    assert agents["Alice"].oldest_waiting_since == at(8)
    assert agents["Alice"].oldest_waiting_seconds == 2 * 3600
    assert (agents["Lena"].presence, agents["Lena"].load, agents["Lena"].waiting) == ("away", 0, 0)
    assert agents["Lena"].oldest_waiting_seconds is None


def test_it_counts_the_queue_and_its_oldest_ticket(day, lena):
    support = _support(lena.user)["Support"]
    assert support.queue_length == 3
    assert support.oldest_queued_since == at(7)
    assert support.oldest_queued_seconds == 3 * 3600


def test_it_counts_tickets_near_and_past_their_sla_once_each(day, lena):
    support = _support(lena.user)["Support"]
    assert (support.sla_near, support.sla_past) == (2, 1)


def test_it_gives_todays_first_response_time_in_the_sites_calendar_day(day, lena):
    support = _support(lena.user)["Support"]
    assert support.frt_responded == 4
    assert support.frt_mean_seconds == 225
    assert support.frt_median_seconds == 120


def test_it_takes_the_middle_response_time_when_the_count_is_odd(day, lena, support_team):
    TicketFactory(team=support_team, status=S.SOLVED, created_at=at(9, 30), first_response_at=at(9, 50))
    support = _support(lena.user)["Support"]
    assert support.frt_responded == 5
    assert support.frt_median_seconds == 180  # 1, 1, 3, 10, 20 minutes
    assert support.frt_mean_seconds == (60 + 60 + 180 + 600 + 1200) // 5


def test_it_gives_todays_csat_responses_and_mean_stars(day, lena, ada):
    assert (_support(lena.user)["Support"].csat_responses, _support(lena.user)["Support"].csat_average) == (
        2, Decimal("4.50"))
    billing = _support(ada)["Billing"]
    assert (billing.csat_responses, billing.csat_average) == (1, Decimal("1.00"))


def test_it_shows_nothing_for_a_team_with_a_quiet_day(day, ada):
    billing = _support(ada)["Billing"]
    assert [(a.name, a.load, a.waiting) for a in billing.agents] == [("Bob", 0, 0)]
    assert (billing.queue_length, billing.oldest_queued_seconds, billing.sla_near, billing.sla_past) == (0, None, 0, 0)
    assert (billing.frt_responded, billing.frt_mean_seconds, billing.frt_median_seconds) == (0, None, None)


def test_a_lead_sees_only_their_teams_and_an_administrator_all(day, lena, ada):
    assert list(_support(lena.user)) == ["Support"]
    assert list(_support(ada)) == ["Billing", "Support"]


@pytest.mark.parametrize("persona", ["alice", "iris", "tom", "olga"])
def test_the_page_and_its_data_refuse_everyone_but_leads_and_administrators(day, client, persona, request):
    user = request.getfixturevalue(persona)
    client.force_login(getattr(user, "user", user))
    assert client.get(reverse("admin:live-view")).status_code == 403
    assert client.get(reverse("admin:live-data")).status_code == 403


def test_the_page_shows_a_leads_team_with_its_figures(day, client, lena):
    client.force_login(lena.user)
    response = client.get("/admin/tickets/ticket/live/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Support" in page and "Billing" not in page
    assert "tickets/live_view.js" in page
    assert "3 / 3" in page and "2:00:00" in page  # Alice's load and oldest waiting


def test_the_json_endpoint_gives_the_same_figures(day, client, ada):
    client.force_login(ada)
    response = client.get("/admin/tickets/ticket/live/data.json")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    data = response.json()
    support = {team["name"]: team for team in data["teams"]}["Support"]
    assert data["day"] == "2026-11-24"
    assert (support["queue_length"], support["sla_near"], support["sla_past"]) == (3, 2, 1)
    assert (support["frt_mean_seconds"], support["frt_median_seconds"], support["csat_average"]) == (225, 120, "4.50")
    alice = support["agents"][0]
    assert (alice["name"], alice["load"], alice["capacity"], alice["waiting"]) == ("Alice", 3, 3, 2)
    assert alice["oldest_waiting_since"] == "2026-11-24T00:00:00+00:00"  # 08:00 in Shanghai


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    assert client.get("/admin/tickets/ticket/live/data.json").status_code == 302


def test_clock_formats_durations_like_the_page_script():
    assert [clock(None), clock(0), clock(59), clock(125), clock(3600), clock(36061)] == [
        "—", "0:00", "0:59", "2:05", "1:00:00", "10:01:01"]


def _organisation(teams: int, agents_per_team: int, tickets_per_agent: int) -> None:
    for n in range(teams):
        team = TeamFactory()
        for _ in range(agents_per_team):
            agent = AgentFactory(teams=[team])
            for i in range(tickets_per_agent):
                ticket = TicketFactory(team=team, assignee=agent, status=S.OPEN, created_at=at(8 + i % 2),
                                       last_customer_message_at=at(9), first_response_at=at(9, 1 + i))
                _clock(ticket, "resolution", warn_at=at(9))
                MessageFactory(ticket=ticket, author_kind=Message.AuthorKind.AGENT, sent_at=at(8, 30))
            TicketFactory(team=team, status=S.NEW, created_at=at(7, n))
        Csat.objects.create(ticket=TicketFactory(team=team, status=S.SOLVED), stars=4, rated_at=at(9), team=team)


def _queries(user) -> tuple[int, int]:
    """Teams seen and queries made, by a fresh copy of `user` (no roles cached)."""
    fresh = type(user).objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as captured:
        view = live_view(fresh, timezone.now())
    return len(view.teams), len(captured)


def test_the_query_count_does_not_grow_with_teams_agents_or_tickets(frozen, ada):
    _organisation(teams=2, agents_per_team=1, tickets_per_agent=1)
    teams, small = _queries(ada)
    assert (teams, small) == (2, 7)  # roles, then teams, agents, waiting, SLA, first response, CSAT
    _organisation(teams=3, agents_per_team=4, tickets_per_agent=3)
    assert _queries(ada) == (5, small)


def test_the_ticket_list_links_to_the_live_view_for_those_who_may_watch(client, lena, alice):
    client.force_login(lena.user)
    assert reverse("admin:live-view") in client.get("/admin/tickets/ticket/").content.decode()
    client.force_login(alice.user)
    assert reverse("admin:live-view") not in client.get("/admin/tickets/ticket/").content.decode()
