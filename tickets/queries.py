"""Read-side helpers for tickets: who sees which, and the querysets the UI lists."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from helpdesk.models import Customer
from helpdesk.queries import agent_of
from helpdesk.roles import sees_everything

from .models import Message, Ticket


def visible_to(user: AbstractBaseUser | AnonymousUser, queryset: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    """The tickets `user` may see: the one rule the admin and the API both apply.

    Administrators, QA inspectors and trainers see every ticket; agents and team leads see
    their teams' tickets and the ones assigned to them; anyone else sees none.
    """
    queryset = Ticket.objects.all() if queryset is None else queryset
    if sees_everything(user):
        return queryset
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    agent = agent_of(user)
    if agent is None:
        return queryset.none()
    team_ids = agent.teams.values("pk")
    return queryset.filter(Q(team__in=team_ids) | Q(assignee=agent))


def customers_visible_to(
    user: AbstractBaseUser | AnonymousUser, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """The customers `user` may see and, with the permission, change: the admin's and the API's rule.

    Roles that see every ticket see every customer. Agents and team leads see the customers of
    the tickets they see, and the ones they created (an agent adds the caller, then opens their
    ticket; the creation is the customer's first history row), not the whole customer base. A
    ticket opened by someone who could not see the customer it was matched to by a phone, email
    or external id (`Ticket.discloses_customer` False) does not count: typing someone's phone
    number must not open their record.
    """
    queryset = Customer.objects.all() if queryset is None else queryset
    if sees_everything(user):
        return queryset
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    created = Customer.history.filter(history_type="+", history_user_id=user.pk).values("id")
    served = visible_to(user).filter(discloses_customer=True).values("customer_id")
    return queryset.filter(Q(pk__in=served) | Q(pk__in=created))


def customers_matchable_by(user: AbstractBaseUser | AnonymousUser | None) -> QuerySet[Customer] | None:
    """What a ticket opened by `user` may disclose of the customer it is matched to (None: any)."""
    if user is None or sees_everything(user):
        return None
    return customers_visible_to(user)


def hidden_customers(user: AbstractBaseUser | AnonymousUser, tickets: Iterable[Ticket]) -> set[int]:
    """Of these tickets' customers, the ids `user` may not see: shown masked, without id (one
    query, none when every ticket discloses its customer)."""
    undisclosed = {ticket.customer_id for ticket in tickets if not ticket.discloses_customer}
    if not undisclosed or sees_everything(user):
        return set()
    return undisclosed - set(customers_visible_to(user).filter(pk__in=undisclosed).values_list("pk", flat=True))


def conversation(ticket: Ticket) -> QuerySet[Message]:
    """The ticket's messages in the order they were sent, with their authors."""
    return ticket.messages.select_related("author_agent").order_by("sent_at", "id")
