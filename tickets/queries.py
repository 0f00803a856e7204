"""Read-side helpers for tickets: who sees which, and the querysets the UI lists."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from helpdesk.models import Customer
from helpdesk.pii import can_see_pii, texts_shown_to
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


MASKED_SEARCH_CANDIDATES = 500  # newest tickets whose stored text holds the term, checked as shown


def search(
    user: AbstractBaseUser | AnonymousUser, queryset: QuerySet[Ticket], term: str, *, conversation: bool = True,
    customer: bool = False,
) -> QuerySet[Ticket]:
    """Tickets of `queryset` whose reference, subject or (with `conversation`) message text holds
    `term`, in the text as `user` reads it: the admin's and the API's search.

    With the PII right that is the stored text (and, with `customer`, the customer's name, phone
    and email). Without it a search must not confirm what the page masks: the stored text only
    proposes candidates (the newest MASKED_SEARCH_CANDIDATES), and a candidate matches when its
    subject or a message, read through helpdesk.pii.texts_shown_to, holds the term. A phone
    number the page shows as 139******78 is then found by "139******78" and never by itself.
    """
    term = term.strip()
    if not term:
        return queryset
    pk = Ticket.pk_from_reference(term)
    if pk is not None and not term.isdigit():
        return queryset.filter(pk=pk)  # "T00012345" or "#12345" names one ticket
    by_pk = Q(pk=pk) if pk is not None else Q(pk__in=[])
    if can_see_pii(user):
        condition = by_pk | Q(subject__icontains=term)
        if customer:
            details = Q(customer__name__icontains=term) | Q(customer__phone__icontains=term)
            details |= Q(customer__email__icontains=term)
            # A customer the ticket does not disclose is not confirmed by searching their name.
            condition |= details if sees_everything(user) else details & Q(discloses_customer=True)
        if conversation:
            # EXISTS, not a join, so a ticket matching in several messages is listed once.
            condition |= Exists(Message.objects.filter(ticket=OuterRef("pk"), body__icontains=term))
        return queryset.filter(condition)
    return queryset.filter(by_pk | Q(pk__in=_matching_as_shown(user, queryset, term, conversation=conversation)))


def _matching_as_shown(user: AbstractBaseUser | AnonymousUser, queryset: QuerySet[Ticket], term: str, *,
                       conversation: bool) -> list[int]:
    # Masking only puts asterisks in place of characters, so the stored text holds any piece of
    # the term without asterisks wherever the shown text holds the term: the longest piece finds
    # every candidate.
    probe = max(term.split("*"), key=len).strip()
    if not probe:
        return []
    candidate = Q(subject__icontains=probe)
    if conversation:
        candidate |= Exists(Message.objects.filter(ticket=OuterRef("pk"), body__icontains=probe))
    rows = list(queryset.filter(candidate).order_by("-id").values_list("pk", "customer_id", "subject")
                [:MASKED_SEARCH_CANDIDATES])
    if not rows:
        return []
    shown = texts_shown_to(user, {customer_id for _pk, customer_id, _subject in rows})
    wanted = term.casefold()
    customer_of = {pk: customer_id for pk, customer_id, _subject in rows}
    found = {pk for pk, customer_id, subject in rows if wanted in shown(customer_id, subject).casefold()}
    if conversation:
        bodies = Message.objects.filter(ticket_id__in=set(customer_of) - found, body__icontains=probe)
        for ticket_id, body in bodies.values_list("ticket_id", "body").iterator():
            if ticket_id not in found and wanted in shown(customer_of[ticket_id], body).casefold():
                found.add(ticket_id)
    return sorted(found)
