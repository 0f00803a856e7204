"""The supervisor's live view: each team's agents, queue, SLA risk and today's figures, as plain data.

`live_view(user, now)` reads everything in a fixed number of queries whatever the number of teams,
agents and tickets (six, plus the role lookup): every figure is aggregated in SQL, and the only
rows that reach Python are teams, (team, agent) pairs and at most two tickets per team (the
middle of the day's first-response times, for the median).

Definitions (the page's help text says the same):
- load: the agent's tickets in new or open, in any team, against their `max_concurrent`;
- waiting conversation: a ticket in new or open whose customer wrote last, i.e. it has a
  customer message (`last_customer_message_at`) and no public agent reply sent at or after it
  (internal notes and automatic replies do not answer); its wait counts from that last customer
  message;
- queue: the team's tickets in new or open with no assignee; its age counts from creation;
- SLA: running clocks (not fulfilled, stopped or paused) of the team's tickets, the rule of the
  ticket list's SLA filter; past = a clock whose due time has passed; near = not past, but a
  clock warned or past its warning time. Each ticket counts once;
- first response today: tickets of the team created today (calendar day in TIME_ZONE) that have a
  first response, `first_response_at - created_at`, mean and median;
- CSAT today: ratings given today (`rated_at`) that count for the team, number and mean stars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from helpdesk.models import Agent, Team
from helpdesk.roles import TEAM_LEAD, has_role, is_administrator

from .models import Csat, Message, SlaClock, Ticket

WORKING = [Ticket.Status.NEW, Ticket.Status.OPEN]  # the statuses that make load and queue
RUNNING = Q(fulfilled_at=None, stopped_at=None, paused_at=None)  # as tickets.admin_sla.RUNNING


@dataclass(frozen=True)
class AgentLive:
    id: int
    name: str
    presence: str
    presence_label: str
    load: int
    capacity: int
    waiting: int
    oldest_waiting_since: datetime | None
    oldest_waiting_seconds: int | None


@dataclass(frozen=True)
class TeamLive:
    id: int
    name: str
    agents: list[AgentLive] = field(default_factory=list)
    queue_length: int = 0
    oldest_queued_since: datetime | None = None
    oldest_queued_seconds: int | None = None
    sla_near: int = 0
    sla_past: int = 0
    frt_responded: int = 0
    frt_mean_seconds: int | None = None
    frt_median_seconds: int | None = None
    csat_responses: int = 0
    csat_average: Decimal | None = None


@dataclass(frozen=True)
class LiveView:
    now: datetime
    day: date
    teams: list[TeamLive]


def may_watch(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Administrators (and superusers) watch every team, team leads their own; nobody else."""
    return is_administrator(user) or (user.is_authenticated and user.is_active and has_role(user, TEAM_LEAD))


def watched_teams(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    """The teams `user` supervises: all for administrators, a lead's own teams; refuses anyone else."""
    if is_administrator(user):
        return Team.objects.all()
    if may_watch(user):
        return Team.objects.filter(agents__user=user)  # no agent profile: no teams
    raise PermissionDenied


def today_bounds(now: datetime) -> tuple[date, datetime, datetime]:
    """Today in TIME_ZONE and its start and end as aware datetimes (23 or 25 hours long on DST days)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return day, start, end


def live_view(user: AbstractBaseUser | AnonymousUser, now: datetime) -> LiveView:
    """Everything the live page shows for the teams `user` supervises, at `now`.

    Raises PermissionDenied for users who supervise nothing (see `may_watch`). Six queries
    after the role lookup, whatever the number of teams, agents and tickets.
    """
    day, start, end = today_bounds(now)
    teams = list(_teams_with_queue(watched_teams(user)))
    team_ids = [team.pk for team in teams]
    agents = _agents_by_team(team_ids, now)
    sla = _sla_by_team(team_ids, now)
    frt = _first_response_by_team(team_ids, start, end)
    csat = _csat_by_team(team_ids, start, end)
    return LiveView(
        now=now,
        day=day,
        teams=[
            TeamLive(
                id=team.pk,
                name=team.name,
                agents=agents.get(team.pk, []),
                queue_length=team.queue_length,
                oldest_queued_since=team.oldest_queued_since,
                oldest_queued_seconds=_age(now, team.oldest_queued_since),
                **sla.get(team.pk, {}),
                **frt.get(team.pk, {}),
                **csat.get(team.pk, {}),
            )
            for team in teams
        ],
    )


def _age(now: datetime, since: datetime | None) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds()))


def _count(queryset: QuerySet) -> Subquery:
    """COUNT(*) of a correlated queryset as a scalar subquery (0 when it has no rows)."""
    counted = queryset.order_by().annotate(n=Count("*", output_field=IntegerField())).values("n")
    return Coalesce(Subquery(counted.values("n")[:1]), Value(0))


def _teams_with_queue(teams: QuerySet[Team]) -> QuerySet[Team]:
    """Query 1: the teams, with their queue (read through the partial index ticket_queue_idx)."""
    queued = Ticket.objects.filter(team=OuterRef("pk"), assignee=None, status__in=WORKING)
    return teams.annotate(
        queue_length=_count(queued.values("team")),
        oldest_queued_since=Subquery(queued.order_by("created_at").values("created_at")[:1]),
    ).order_by("name")


def _agents_by_team(team_ids: list[int], now: datetime) -> dict[int, list[AgentLive]]:
    """Queries 2 and 3: each team's agents with their load, then their waiting conversations.

    One row per (team, agent): an agent in two teams is shown in both, with the same figures.
    Load is an index-only count per agent (ticket_load_idx). Waiting conversations are one pass
    over the agents' new and open tickets, each probed once for a public agent reply since the
    customer's last message (message_thread_idx); the NOT EXISTS sits in WHERE, not in each
    aggregate's FILTER, so PostgreSQL runs it once per ticket rather than once per aggregate.
    """
    members = Agent.teams.through.objects.filter(team_id__in=team_ids)
    holding = Ticket.objects.filter(assignee=OuterRef("agent_id"), status__in=WORKING)
    rows = (
        members.annotate(load=_count(holding.values("assignee")))
        .order_by("team_id", "agent__display_name", "agent_id")
        .values_list("team_id", "agent_id", "agent__display_name", "agent__presence", "agent__max_concurrent", "load")
    )
    answered = Message.objects.filter(
        ticket=OuterRef("pk"), author_kind=Message.AuthorKind.AGENT, is_internal=False,
        sent_at__gte=OuterRef("last_customer_message_at"),
    )
    waiting = dict(
        (assignee, (count, since))
        for assignee, count, since in Ticket.objects.filter(
            status__in=WORKING, assignee__in=members.values("agent_id"), last_customer_message_at__isnull=False
        )
        .exclude(Exists(answered))
        .values("assignee")
        .annotate(waiting=Count("pk"), oldest_waiting_since=Min("last_customer_message_at"))
        .order_by()
        .values_list("assignee", "waiting", "oldest_waiting_since")
    )
    labels = dict(Agent.Presence.choices)
    by_team: dict[int, list[AgentLive]] = {}
    for team_id, agent_id, name, presence, capacity, load in rows:
        waiting_count, since = waiting.get(agent_id, (0, None))
        by_team.setdefault(team_id, []).append(
            AgentLive(
                id=agent_id, name=name, presence=presence, presence_label=str(labels.get(presence, presence)),
                load=load, capacity=capacity, waiting=waiting_count, oldest_waiting_since=since,
                oldest_waiting_seconds=_age(now, since),
            )
        )
    return by_team


def _sla_by_team(team_ids: list[int], now: datetime) -> dict[int, dict]:
    """Query 4: tickets near or past their SLA per team, from the running clocks.

    "Near" tickets are those with a clock warned, warning or breached, minus those with a clock
    breached: every breached clock also satisfies the first condition, so the difference is
    exactly the tickets warned but not breached, without a subquery per ticket.
    """
    at_risk = Q(due_at__lte=now) | Q(warn_at__lte=now) | Q(warned_at__isnull=False)
    rows = (
        SlaClock.objects.filter(RUNNING, ticket__team_id__in=team_ids)
        .filter(at_risk)
        .values("ticket__team_id")
        .annotate(
            at_risk=Count("ticket_id", distinct=True),
            past=Count("ticket_id", distinct=True, filter=Q(due_at__lte=now)),
        )
        .order_by()
        .values_list("ticket__team_id", "at_risk", "past")
    )
    return {team_id: {"sla_near": at_risk - past, "sla_past": past} for team_id, at_risk, past in rows}


def _first_response_by_team(team_ids: list[int], start: datetime, end: datetime) -> dict[int, dict]:
    """Query 5: today's first-response times per team: count, mean and median.

    Window functions number each team's responded tickets by response time; only the one or two
    middle rows come back, each carrying its team's count and mean.
    """
    responded = (
        Ticket.objects.filter(
            team_id__in=team_ids, created_at__gte=start, created_at__lt=end, first_response_at__isnull=False
        )
        .annotate(frt=ExpressionWrapper(F("first_response_at") - F("created_at"), output_field=DurationField()))
        .annotate(
            position=Window(RowNumber(), partition_by=[F("team_id")], order_by=[F("frt").asc(), F("pk").asc()]),
            responded=Window(Count("pk"), partition_by=[F("team_id")]),
            mean=Window(Avg("frt", output_field=DurationField()), partition_by=[F("team_id")]),
        )
        # The middle row (odd count) or the two middle rows (even count); integer division.
        .filter(position__gte=(F("responded") + 1) / 2, position__lte=(F("responded") + 2) / 2)
        .order_by()
        .values_list("team_id", "frt", "responded", "mean")
    )
    middles: dict[int, list[timedelta]] = {}
    figures: dict[int, dict] = {}
    for team_id, frt, count, mean in responded:
        middles.setdefault(team_id, []).append(_duration(frt))
        figures[team_id] = {"frt_responded": count, "frt_mean_seconds": round(_duration(mean).total_seconds())}
    for team_id, values in middles.items():
        figures[team_id]["frt_median_seconds"] = round(sum(v.total_seconds() for v in values) / len(values))
    return figures


def _duration(value: timedelta | float | int) -> timedelta:
    """SQLite hands back an average of durations as microseconds; PostgreSQL as an interval."""
    return value if isinstance(value, timedelta) else timedelta(microseconds=value)


def _csat_by_team(team_ids: list[int], start: datetime, end: datetime) -> dict[int, dict]:
    """Query 6: ratings given today that count for each team: number and mean stars."""
    rows = (
        Csat.objects.filter(team_id__in=team_ids, rated_at__gte=start, rated_at__lt=end)
        .values("team_id")
        .annotate(responses=Count("pk"), average=Avg("stars"))
        .order_by()
        .values_list("team_id", "responses", "average")
    )
    return {
        team_id: {"csat_responses": responses, "csat_average": Decimal(str(average)).quantize(Decimal("0.01"))}
        for team_id, responses, average in rows
    }


def as_json(view: LiveView) -> dict:
    """The view as JSON primitives for the page's refresh (datetimes in ISO 8601, UTC)."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "now": when(view.now),
        "day": view.day.isoformat(),
        "teams": [
            {
                "id": team.id,
                "name": team.name,
                "queue_length": team.queue_length,
                "oldest_queued_since": when(team.oldest_queued_since),
                "oldest_queued_seconds": team.oldest_queued_seconds,
                "sla_near": team.sla_near,
                "sla_past": team.sla_past,
                "frt_responded": team.frt_responded,
                "frt_mean_seconds": team.frt_mean_seconds,
                "frt_median_seconds": team.frt_median_seconds,
                "csat_responses": team.csat_responses,
                "csat_average": None if team.csat_average is None else str(team.csat_average),
                "agents": [
                    {
                        "id": agent.id,
                        "name": agent.name,
                        "presence": agent.presence,
                        "presence_label": agent.presence_label,
                        "load": agent.load,
                        "capacity": agent.capacity,
                        "waiting": agent.waiting,
                        "oldest_waiting_since": when(agent.oldest_waiting_since),
                        "oldest_waiting_seconds": agent.oldest_waiting_seconds,
                    }
                    for agent in team.agents
                ],
            }
            for team in view.teams
        ],
    }
