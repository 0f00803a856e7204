"""Routing: which team and skill a new ticket needs, and which agent gets it.

Rules are tried in order, first match wins, like SLA policies. Inside a team a ticket goes to
an agent who is online, holds the required skill and is under capacity: least loaded first,
then idle longest; a VIP customer's ticket goes to VIP-skilled agents first. A ticket nobody
can take waits in its team's queue, oldest first, until an agent comes online or frees a seat.

Every assignment locks the agent's row and counts the load again under the lock, so two
tickets arriving at once cannot both take an agent's last seat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import (
    Exists,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.expressions import Combinable
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk import services as org_services
from helpdesk.errors import DomainError
from helpdesk.models import Agent, Customer, Team
from helpdesk.process_cache import process_cached

from .models import Category, RoutingRule, Ticket

S = Ticket.Status
LOAD_STATUSES = (S.NEW, S.OPEN)
VIP_SKILL = "vip"
RULES_SECONDS = 30
# One sweep of a team's queue assigns at most this many tickets; the next sweep goes on.
QUEUE_BATCH = 100


@dataclass(frozen=True)
class Rule:
    pk: int
    channels: frozenset[str]
    tiers: frozenset[str]
    category_ids: frozenset[int]
    keywords: tuple[str, ...]
    weekdays: frozenset[int]
    starts_at: clock_time | None
    ends_at: clock_time | None
    team_id: int
    skill_id: int | None
    suggested_category: Category | None

    def keyword_in(self, text: str) -> bool:
        return any(word in text for word in self.keywords)

    def in_window(self, local: datetime) -> bool:
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return False
        start, end, now = self.starts_at, self.ends_at, local.time()
        if start is None or end is None:
            return (start is None or now >= start) and (end is None or now < end)
        return start <= now < end if start <= end else (now >= start or now < end)  # 22:00-06:00

    def matches(self, ticket: Ticket, tier: str, text: str, local: datetime) -> bool:
        return (
            (not self.channels or ticket.channel in self.channels)
            and (not self.tiers or tier in self.tiers)
            and (not self.category_ids or ticket.category_id in self.category_ids)
            and (not self.keywords or self.keyword_in(text))
            and self.in_window(local)
        )


@process_cached(seconds=RULES_SECONDS)
def rules() -> list[Rule]:
    """Active rules in order, kept per process (every new ticket reads them)."""
    queryset = RoutingRule.objects.filter(is_active=True).select_related("suggested_category")
    loaded = [
        Rule(
            pk=rule.pk,
            channels=frozenset(rule.channels),
            tiers=frozenset(rule.tiers),
            category_ids=frozenset(c.pk for c in rule.categories.all()),
            keywords=tuple(w.strip().casefold() for w in rule.keywords.splitlines() if w.strip()),
            weekdays=frozenset(rule.weekdays),
            starts_at=rule.starts_at,
            ends_at=rule.ends_at,
            team_id=rule.team_id,
            skill_id=rule.skill_id,
            suggested_category=rule.suggested_category,
        )
        for rule in queryset.prefetch_related("categories")
    ]
    return loaded


def forget_rules() -> None:
    """Read the rules again on next use (this process; others within RULES_SECONDS)."""
    rules.forget()


# --- a new ticket ---------------------------------------------------------------------


def route_new_ticket(ticket: Ticket, *, body: str) -> None:
    """Before the first save: category (when missing), team and skill from the rules, then an agent.

    A team the sender named is kept; the rules then only suggest a category. The ticket is
    saved by the caller, so routing adds no write of its own except the agent's idle clock.
    """
    active = rules()
    if active:
        text = f"{ticket.subject}\n{body}".casefold()
        tier = ticket.customer.tier
        if ticket.category_id is None:
            suggested = next((r for r in active if r.suggested_category and r.keywords and r.keyword_in(text)), None)
            if suggested is not None:
                ticket.category = suggested.suggested_category
        local = timezone.localtime(ticket.created_at)
        rule = next((r for r in active if r.matches(ticket, tier, text, local)), None)
        if rule is not None and ticket.team_id is None:
            ticket.team_id, ticket.required_skill_id = rule.team_id, rule.skill_id
    if ticket.team_id is not None and ticket.assignee_id is None:
        agent = _take_seat(ticket.team_id, ticket.required_skill_id, vip=ticket.customer.tier == Customer.Tier.VIP)
        if agent is not None:
            ticket.assignee = agent
            ticket.status = S.OPEN  # assigned is being worked, as when a person assigns it


class BoundedCount(Subquery):
    """How many rows a subquery has, reading at most `bound` of them (a LIMIT from the outer row).

    A count that stops: an agent's load only matters up to their capacity, and an agent may hold
    tens of thousands of open tickets on a backlog day. SQLite takes no LIMIT from the outer row,
    so there (the single-machine default) the rows are all counted and the count capped.
    """

    template = "(SELECT COUNT(*) FROM (%(subquery)s LIMIT %(bound)s) AS bounded)"
    sqlite_template = "MIN((SELECT COUNT(*) FROM (%(subquery)s) AS bounded), %(bound)s)"

    def __init__(self, queryset: QuerySet, bound: Combinable) -> None:
        super().__init__(queryset, output_field=IntegerField())
        self.bound = bound

    def get_source_expressions(self) -> list:
        return [self.query, self.bound]

    def set_source_expressions(self, exprs: list) -> None:
        self.query, self.bound = exprs

    def as_sql(self, compiler, connection, template=None, **extra_context):  # type: ignore[no-untyped-def]
        bound_sql, bound_params = compiler.compile(self.bound)
        sql, params = super().as_sql(compiler, connection, template, bound=bound_sql, **extra_context)
        return sql, (*params, *bound_params)

    def as_sqlite(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        return self.as_sql(compiler, connection, template=self.sqlite_template, **extra_context)


def load() -> BoundedCount:
    """An agent's load (new and open tickets held), exact below capacity, capacity + 1 above it.

    Annotates Agent rows. Reads at most max_concurrent + 1 entries of `ticket_load_idx` per
    agent, whatever the table holds; every decision (under capacity, least loaded first) only
    needs the exact figure below capacity.
    """
    held = Ticket.objects.filter(assignee=OuterRef("pk"), status__in=LOAD_STATUSES).order_by().values("assignee")
    return BoundedCount(held, F("max_concurrent") + 1)


def candidates(team_id: int, skill_id: int | None, *, vip: bool) -> QuerySet[Agent]:
    """Agents who may take a ticket of the team now, best first."""
    agents = (
        Agent.objects.filter(teams=team_id, presence=Agent.Presence.ONLINE)
        .annotate(load=load())
        .filter(load__lt=F("max_concurrent"))
    )
    if skill_id is not None:
        agents = agents.filter(skills=skill_id)
    order = ["load", F("last_assigned_at").asc(nulls_first=True), "pk"]
    if vip:
        vip_skilled = Agent.skills.through.objects.filter(agent=OuterRef("pk"), skill__code=VIP_SKILL)
        agents = agents.annotate(vip=Exists(vip_skilled))
        order.insert(0, F("vip").desc())
    return agents.order_by(*order)


def _take_seat(team_id: int, skill_id: int | None, *, vip: bool) -> Agent | None:
    """The best agent with a free seat, locked and counted again; their idle clock restarts.

    The few best candidates are locked together in id order, so two assignments never wait on
    each other's agents in opposite orders.
    """
    best = list(candidates(team_id, skill_id, vip=vip).values_list("pk", flat=True)[:5])
    if not best:
        return None
    locked = {
        agent.pk: agent
        for agent in Agent.objects.select_for_update().filter(pk__in=best, presence=Agent.Presence.ONLINE).order_by("pk")
    }
    # A statement of its own, after the locks: it sees the tickets of whoever held them before.
    held = dict(Agent.objects.filter(pk__in=list(locked)).annotate(load=load()).values_list("pk", "load"))
    for pk in best:
        agent = locked.get(pk)
        if agent is not None and held.get(pk, 0) < agent.max_concurrent:
            agent.last_assigned_at = timezone.now()
            Agent.objects.filter(pk=pk).update(last_assigned_at=agent.last_assigned_at)
            return agent
    return None


def has_seat(agent: Agent) -> bool:
    """Under capacity, counted under a lock on the agent's row."""
    Agent.objects.select_for_update().filter(pk=agent.pk).exists()
    # Unordered, or the default order sorts all the agent's tickets before the LIMIT.
    held = Ticket.objects.filter(assignee=agent, status__in=LOAD_STATUSES).order_by()[: agent.max_concurrent]
    return held.count() < agent.max_concurrent


# --- the queue --------------------------------------------------------------------------


def waiting(team_ids: list[int] | QuerySet) -> QuerySet[Ticket]:
    """The teams' queue: new or open tickets nobody holds, oldest first."""
    return Ticket.objects.filter(team__in=team_ids, assignee=None, status__in=LOAD_STATUSES).order_by("created_at", "pk")


def assign_waiting(team: Team, *, limit: int = QUEUE_BATCH) -> int:
    """Give the team's waiting tickets to agents with free seats, oldest first; returns how many.

    Tickets needing a skill nobody can take now are stepped over, in SQL, so a backlog of them
    never hides a ticket behind it that someone could take.
    """
    from . import services

    assigned = 0
    skipped: set[int | None] = set()  # skills nobody can take now; None: nobody has a seat at all
    for _page in range(10):
        queue = waiting([team.pk])
        if skipped:
            queue = queue.exclude(required_skill__in=[pk for pk in skipped if pk is not None])
        page = list(queue.values_list("pk", "required_skill_id", "customer__tier")[: limit - assigned])
        progress = (assigned, len(skipped))
        for ticket_id, skill_id, tier in page:
            if skill_id in skipped:
                continue
            with transaction.atomic():
                ticket = Ticket.objects.select_for_update(skip_locked=True).filter(
                    pk=ticket_id, assignee=None, status__in=LOAD_STATUSES
                ).first()
                if ticket is None:
                    continue  # someone else is at it
                agent = _take_seat(team.pk, skill_id, vip=tier == Customer.Tier.VIP)
                if agent is None:
                    if skill_id is None:
                        return assigned  # nobody in the team has a seat
                    skipped.add(skill_id)
                    continue
                services.update_ticket(ticket=ticket, changes={"assignee": agent}, reason="routing")
                assigned += 1
        if not page or assigned >= limit or (assigned, len(skipped)) == progress:
            break
    return assigned


def fill_agent(agent: Agent) -> int:
    """An agent came online or freed a seat: the queues of their teams move."""
    return sum(assign_waiting(team) for team in agent.teams.all())


def on_capacity_freed(ticket: Ticket) -> None:
    """The ticket's assignee holds one conversation fewer: after commit, their queue moves."""
    agent_id = ticket.assignee_id
    transaction.on_commit(lambda: _fill_agent_id(agent_id), robust=True)


def _fill_agent_id(agent_id: int) -> None:
    agent = Agent.objects.filter(pk=agent_id, presence=Agent.Presence.ONLINE).first()
    if agent is not None:
        fill_agent(agent)


def on_team_changed(ticket: Ticket) -> None:
    """A ticket moved to a team without an assignee: after commit, that team's queue moves."""
    team = ticket.team
    transaction.on_commit(lambda: assign_waiting(team), robust=True)


def assign_all_waiting() -> int:
    """Beat's safety net: every team with a waiting ticket and an agent online gets a pass."""
    queued = Ticket.objects.filter(team=OuterRef("pk"), assignee=None, status__in=LOAD_STATUSES)
    teams = Team.objects.filter(
        Exists(queued), Exists(Agent.objects.filter(teams=OuterRef("pk"), presence=Agent.Presence.ONLINE))
    )
    return sum(assign_waiting(team) for team in teams)


# --- agents ---------------------------------------------------------------------------


def set_presence(*, agent: Agent, presence: str, actor: AbstractBaseUser | None = None) -> Agent:
    """Set presence; online takes waiting tickets, offline puts untouched ones back in the queue."""
    from . import services

    with transaction.atomic():
        before = agent.presence
        agent = org_services.set_presence(agent=agent, presence=presence)
        if presence == Agent.Presence.OFFLINE and before != presence:
            for ticket in untouched(agent).order_by("pk").select_for_update(of=("self",)):
                services.update_ticket(ticket=ticket, changes={"assignee": None}, actor=actor, reason="offline")
                transaction.on_commit(lambda team=ticket.team: team and assign_waiting(team), robust=True)
    if presence == Agent.Presence.ONLINE and before != presence:
        fill_agent(agent)
    return agent


def untouched(agent: Agent) -> QuerySet[Ticket]:
    """The agent's new or open tickets nobody has answered in public yet.

    A conversation under way (answered, by them or a colleague before them) stays with the agent.
    """
    return Ticket.objects.filter(assignee=agent, status__in=LOAD_STATUSES, first_response_at=None)


def claim_ticket(*, ticket: Ticket, agent: Agent, actor: AbstractBaseUser | None = None) -> Ticket:
    """An agent takes a waiting ticket; of two claiming at once exactly one gets it."""
    from . import services

    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
        if locked.assignee_id is not None:
            if locked.assignee_id == agent.pk:
                return locked
            raise DomainError("already_assigned", _("Someone else has this ticket already."))
        if locked.status in LOAD_STATUSES and not has_seat(agent):
            raise DomainError(
                "no_capacity", _("You hold as many conversations as you may (%d); finish one first.") % agent.max_concurrent
            )
        return services.update_ticket(ticket=locked, changes={"assignee": agent}, actor=actor, reason="claimed")
