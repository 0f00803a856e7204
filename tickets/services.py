"""Every operation that changes a ticket or its conversation.

Admin views, actions, tasks and (later) the API call these; no rule lives twice. Each
function is one transaction that locks the ticket row before reading its status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk import webhooks
from helpdesk.errors import DomainError
from helpdesk.models import Agent, Channel, Customer, Tag, Team

from . import autoreplies, csat, routing, sla
from .models import Category, Escalation, Message, Ticket
from .payloads import message_data, ticket_data
from .transitions import can_transition

logger = logging.getLogger(__name__)

S = Ticket.Status
UPDATABLE_FIELDS = frozenset({"subject", "priority", "category", "team", "assignee"})


def _lock(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock, so decisions are made on its current state."""
    return Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)


def _lock_open(ticket: Ticket) -> Ticket:
    """Lock the ticket, refusing a closed one: a closed ticket is a record, not work."""
    ticket = _lock(ticket)
    if ticket.status == S.CLOSED:
        raise DomainError("ticket_closed", _("A closed ticket cannot be changed."))
    return ticket


def _save(ticket: Ticket, *, actor: AbstractBaseUser | None, reason: str = "") -> None:
    """Save with an audit row naming who did it and why."""
    ticket.updated_at = timezone.now()
    if actor is not None:
        ticket._history_user = actor
    if reason:
        ticket._change_reason = reason
    ticket.save()


def _apply_status(ticket: Ticket, status: str, *, at: datetime) -> None:
    """Set the status and the timestamps that go with it; the caller has checked the move."""
    spent = max(0, int((at - (ticket.status_changed_at or ticket.created_at)).total_seconds()))
    if ticket.status in (S.NEW, S.OPEN, S.ON_HOLD):
        ticket.requester_wait_seconds += spent
    if ticket.status in (S.NEW, S.OPEN):
        ticket.agent_work_seconds += spent
    ticket.status_changed_at = at
    if status == S.SOLVED:
        ticket.solved_at = at
    elif status == S.CLOSED:
        ticket.closed_at = at
    elif ticket.status == S.SOLVED:  # reopened
        ticket.solved_at = None
        ticket.reopens += 1
    ticket.status = status


def _status_changed(ticket: Ticket, *, old: str, at: datetime) -> None:
    """What follows a status change: the SLA clocks, a survey on solve, a freed agent's next ticket."""
    sla.on_status_change(ticket, old=old, at=at)
    if ticket.status == S.SOLVED:
        csat.on_solved(ticket)
    if ticket.assignee_id and old in routing.LOAD_STATUSES and ticket.status not in routing.LOAD_STATUSES:
        routing.on_capacity_freed(ticket)


PRIORITY_ORDER = list(Ticket.Priority)  # declared lowest first


def _at_least(priority: str, category: Category | None) -> str:
    """The priority, raised to the category's minimum (account security is always urgent)."""
    floor = category.minimum_priority if category is not None else ""
    if floor and PRIORITY_ORDER.index(floor) > PRIORITY_ORDER.index(priority):
        return floor
    return priority


def _check_transition(ticket: Ticket, status: str) -> None:
    if status not in S.values:
        raise DomainError("invalid_status", _("Unknown status “%s”.") % status, field="status")
    if not can_transition(ticket.status, status):
        raise DomainError(
            "illegal_transition",
            _("A ticket cannot go from “%(from)s” to “%(to)s”.")
            % {"from": S(ticket.status).label, "to": S(status).label},
            field="status",
        )


def open_ticket(
    *,
    customer: Customer,
    subject: str,
    channel: str,
    body: str,
    category: Category | None = None,
    priority: str = Ticket.Priority.NORMAL,
    team: Any = None,
    sent_at: datetime | None = None,
    channel_message_id: str = "",
    attachments: Sequence[dict[str, Any]] = (),
    external_id: str = "",
    conversation_id: str = "",
    previous_ticket: Ticket | None = None,
    actor: AbstractBaseUser | None = None,
    notify: bool = True,
    discloses_customer: bool = True,
) -> Ticket:
    """Open a ticket with the customer's first message (left on the ticket as `opening_message`).

    An external id that another ticket has is refused as a `duplicate`; callers that want a
    retried create to return the first ticket (tickets.intake) look it up first.
    """
    if channel not in Channel.values:
        raise DomainError("invalid_channel", _("Unknown channel “%s”.") % channel, field="channel")
    if priority not in Ticket.Priority.values:
        raise DomainError("invalid_priority", _("Unknown priority “%s”.") % priority, field="priority")
    if not subject.strip():
        raise DomainError("required", _("A ticket needs a subject."), field="subject")
    if not body.strip():
        raise DomainError("required", _("The first message cannot be empty."), field="body")
    priority = _at_least(priority, category)
    # Checked before the transaction: refused input leaves a caller's transaction usable. Once
    # writing, no savepoint: inside a caller's transaction a failure aborts it all.
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        sent_at = sent_at or now
        ticket = Ticket(
            subject=subject.strip(),
            customer=customer,
            discloses_customer=discloses_customer,
            channel=channel,
            category=category,
            priority=priority,
            team=team,
            created_at=now,
            updated_at=now,
            last_customer_message_at=sent_at,
            external_id=external_id,
            conversation_id=conversation_id,
            previous_ticket=previous_ticket,
            status_changed_at=now,
        )
        routing.route_new_ticket(ticket, body=body)
        ticket.priority = _at_least(ticket.priority, ticket.category)  # a category routing suggested
        if actor is not None:
            ticket._history_user = actor
        if not external_id:
            ticket.save()
        else:
            try:
                with transaction.atomic():
                    ticket.save()
            except IntegrityError:
                # A concurrent retry with the same external id got there first.
                raise DomainError(
                    "duplicate", _("A ticket with this external id exists already."), field="external_id"
                ) from None
        message = Message.objects.create(
            ticket=ticket,
            author_kind=Message.AuthorKind.CUSTOMER,
            body=body,
            sent_at=sent_at,
            channel_message_id=channel_message_id,
            attachments=list(attachments),
        )
        # The customer's own message, for callers that return it: an automatic reply may follow
        # it in the conversation, so "the ticket's only message" is not a way to find it.
        ticket.opening_message = message
        sla.on_ticket_opened(ticket, at=now)
        if notify:
            webhooks.emit("ticket.created", ticket_data(ticket))
            webhooks.emit("message.created", message_data(message))
        autoreplies.on_customer_message(ticket=ticket, message=message, first=True)  # after, in the events too
    return ticket


@transaction.atomic
def post_message(
    *,
    ticket: Ticket,
    author_kind: str,
    body: str,
    agent: Agent | None = None,
    internal: bool = False,
    sent_at: datetime | None = None,
    channel_message_id: str = "",
    attachments: Sequence[dict[str, Any]] = (),
    status_after: str | None = None,
    actor: AbstractBaseUser | None = None,
    notify: bool = True,
) -> Message:
    """Add a message to the conversation and move the ticket as the message implies.

    A customer writing reopens a solved ticket and wakes a pending one; the first public
    agent reply is the first response and opens a new ticket. A message whose channel id
    the ticket already holds is returned as it is, so a channel may safely resend.
    """
    if author_kind not in Message.AuthorKind.values:
        raise DomainError("invalid_author", _("Unknown author kind “%s”.") % author_kind, field="author_kind")
    if not body.strip():
        raise DomainError("required", _("A message cannot be empty."), field="body")
    if author_kind == Message.AuthorKind.CUSTOMER and internal:
        raise DomainError("invalid_internal", _("A customer cannot write an internal note."), field="internal")
    if author_kind == Message.AuthorKind.AGENT and agent is None:
        raise DomainError("required", _("An agent message needs its agent."), field="agent")

    ticket = _lock(ticket)
    if channel_message_id:
        existing = ticket.messages.filter(channel_message_id=channel_message_id).first()
        if existing is not None:
            return existing
    if ticket.status == S.CLOSED:
        raise DomainError("ticket_closed", _("The ticket is closed; it takes no more messages."))
    if status_after is not None and author_kind == Message.AuthorKind.CUSTOMER:
        raise DomainError("invalid_status", _("Only agents set a status when replying."), field="status")

    now = timezone.now()
    sent_at = sent_at or now
    message = Message.objects.create(
        ticket=ticket,
        author_kind=author_kind,
        author_agent=agent if author_kind == Message.AuthorKind.AGENT else None,
        is_internal=internal,
        body=body,
        sent_at=sent_at,
        created_at=now,
        channel_message_id=channel_message_id,
        attachments=list(attachments),
    )

    old_status = ticket.status
    answered_first = False
    if author_kind == Message.AuthorKind.CUSTOMER:
        if ticket.last_customer_message_at is None or sent_at > ticket.last_customer_message_at:
            ticket.last_customer_message_at = sent_at
        if ticket.status in (S.PENDING, S.SOLVED):
            _apply_status(ticket, S.OPEN, at=now)
    elif message.is_public_agent_reply:
        ticket.public_replies += 1
        if ticket.first_response_at is None:
            ticket.first_response_at = sent_at
            answered_first = True
        if ticket.status == S.NEW and status_after is None:
            _apply_status(ticket, S.OPEN, at=now)
    if status_after is not None and status_after != ticket.status:
        _check_transition(ticket, status_after)
        _apply_status(ticket, status_after, at=now)

    # A customer's message counts once the ticket is awake again; an agent's reply counts
    # before the status it sets (a reply that solves still answered the customer).
    if message.is_public_agent_reply:
        sla.on_agent_reply(ticket, at=sent_at)
    if ticket.status != old_status:
        _status_changed(ticket, old=old_status, at=now)
    if author_kind == Message.AuthorKind.CUSTOMER:
        sla.on_customer_message(ticket, at=sent_at)
    if ticket.status != old_status or answered_first:
        _save(ticket, actor=actor, reason=f"message:{author_kind}")
    else:
        # Nothing an auditor cares about changed: bump updated_at without a history row.
        Ticket.objects.filter(pk=ticket.pk).update(
            updated_at=now, last_customer_message_at=ticket.last_customer_message_at, public_replies=ticket.public_replies
        )
    if notify:
        webhooks.emit("message.created", message_data(message))
        if ticket.status != old_status:
            webhooks.emit("ticket.status_changed", {**ticket_data(ticket), "previous_status": old_status})
    if author_kind == Message.AuthorKind.CUSTOMER:
        autoreplies.on_customer_message(ticket=ticket, message=message, first=False)  # after, in the events too
    return message


@transaction.atomic
def change_status(
    *, ticket: Ticket, status: str, actor: AbstractBaseUser | None = None, reason: str = ""
) -> Ticket:
    """Move the ticket to `status` if the status machine allows it; otherwise raise."""
    ticket = _lock(ticket)
    _check_transition(ticket, status)
    old_status = ticket.status
    now = timezone.now()
    _apply_status(ticket, status, at=now)
    _status_changed(ticket, old=old_status, at=now)
    _save(ticket, actor=actor, reason=reason)
    webhooks.emit("ticket.status_changed", {**ticket_data(ticket), "previous_status": old_status, "reason": reason})
    return ticket


@transaction.atomic
def update_ticket(
    *, ticket: Ticket, changes: dict[str, Any], actor: AbstractBaseUser | None = None, reason: str = ""
) -> Ticket:
    """Change subject, priority, category, team or assignee; assigning a new ticket opens it.

    Setting what is already there writes nothing, not even an audit row.
    """
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        field = sorted(unknown)[0]
        raise DomainError("not_updatable", _("“%s” cannot be changed here.") % field, field=field)
    if "priority" in changes and changes["priority"] not in Ticket.Priority.values:
        raise DomainError(
            "invalid_priority", _("Unknown priority “%s”.") % changes["priority"], field="priority"
        )
    ticket = _lock_open(ticket)
    if changes.get("category") is not None:
        changes = {**changes, "priority": _at_least(changes.get("priority", ticket.priority), changes["category"])}
    changed = {name: value for name, value in changes.items() if getattr(ticket, name) != value}
    if not changed:
        return ticket
    if "assignee" in changed and ticket.assignee_id and ticket.status in routing.LOAD_STATUSES:
        routing.on_capacity_freed(ticket)  # the previous assignee has a seat free
    for name, value in changed.items():
        setattr(ticket, name, value)
    old_status = ticket.status
    now = timezone.now()
    if changed.get("assignee") is not None and ticket.status == S.NEW:
        _apply_status(ticket, S.OPEN, at=now)
        _status_changed(ticket, old=old_status, at=now)
    if {"priority", "category"} & set(changed):
        sla.on_reclassified(ticket, at=now)
    if "team" in changed and ticket.team is not None and ticket.assignee_id is None:
        routing.on_team_changed(ticket)
    _save(ticket, actor=actor, reason=reason)
    webhooks.emit("ticket.updated", {**ticket_data(ticket), "changed": sorted(changed)})
    if ticket.status != old_status:
        webhooks.emit("ticket.status_changed", {**ticket_data(ticket), "previous_status": old_status})
    return ticket


def assign_ticket(*, ticket: Ticket, agent: Agent | None, actor: AbstractBaseUser | None = None) -> Ticket:
    """Give the ticket to `agent` (None unassigns)."""
    return update_ticket(ticket=ticket, changes={"assignee": agent}, actor=actor)


@transaction.atomic
def add_tags(*, ticket: Ticket, names: Iterable[str], actor: AbstractBaseUser | None = None) -> list[Tag]:
    """Attach tags by name, creating the ones that do not exist yet."""
    if not any(name.strip() for name in names):
        raise DomainError("required", _("Give at least one tag."), field="tags")
    ticket = _lock_open(ticket)
    tags = _tags_named(names)
    _set_tags(ticket, {*ticket.tags.all(), *tags}, actor=actor)
    return tags


@transaction.atomic
def set_tags(*, ticket: Ticket, tags: Iterable[Tag], actor: AbstractBaseUser | None = None) -> Ticket:
    """Make the ticket's tags exactly `tags`."""
    ticket = _lock_open(ticket)
    _set_tags(ticket, set(tags), actor=actor)
    return ticket


@transaction.atomic
def set_tag_names(*, ticket: Ticket, names: Iterable[str], actor: AbstractBaseUser | None = None) -> Ticket:
    """Make the ticket's tags exactly the named ones, creating tags that do not exist yet."""
    return set_tags(ticket=ticket, tags=_tags_named(names), actor=actor)


def _tags_named(names: Iterable[str]) -> list[Tag]:
    """The tags with these names, made where missing."""
    cleaned = sorted({name.strip() for name in names if name.strip()})
    too_long = [name for name in cleaned if len(name) > Tag._meta.get_field("name").max_length]
    if too_long:
        raise DomainError("too_long", _("Tag “%s” is too long.") % too_long[0], field="tags")
    Tag.objects.bulk_create([Tag(name=name) for name in cleaned], ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=cleaned))


def _set_tags(ticket: Ticket, tags: set[Tag], *, actor: AbstractBaseUser | None) -> None:
    if {tag.pk for tag in tags} == set(ticket.tags.values_list("pk", flat=True)):
        return
    if actor is not None:
        ticket._history_user = actor
    ticket.tags.set(tags)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    webhooks.emit("ticket.updated", {**ticket_data(ticket), "changed": ["tags"]})


def close_solved_tickets(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Close tickets solved more than TICKETS_AUTO_CLOSE_DAYS ago; returns how many.

    Safe to run twice or concurrently: each ticket is closed under its own lock, and one
    reopened or closed meanwhile is skipped.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.TICKETS_AUTO_CLOSE_DAYS)
    closed = 0
    last_pk = 0
    while True:
        ids = list(
            Ticket.objects.filter(status=S.SOLVED, solved_at__lt=cutoff, pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return closed
        for pk in ids:
            try:
                _close_if_still_solved(pk=pk, cutoff=cutoff)
                closed += 1
            except (DomainError, Ticket.DoesNotExist):
                logger.info("Ticket %s changed before auto-close; skipped.", pk)
        last_pk = ids[-1]


@transaction.atomic
def _close_if_still_solved(*, pk: int, cutoff: datetime) -> None:
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=pk)
    if ticket.status != S.SOLVED or ticket.solved_at is None or ticket.solved_at >= cutoff:
        raise DomainError("changed", "another worker got there first")
    now = timezone.now()
    _apply_status(ticket, S.CLOSED, at=now)
    _status_changed(ticket, old=S.SOLVED, at=now)
    _save(ticket, actor=None, reason="auto_close")
    webhooks.emit("ticket.status_changed", {**ticket_data(ticket), "previous_status": S.SOLVED, "reason": "auto_close"})


__all__ = [
    "add_tags",
    "assign_ticket",
    "change_status",
    "close_solved_tickets",
    "escalate_ticket",
    "hand_back_ticket",
    "open_ticket",
    "post_message",
    "set_tag_names",
    "set_tags",
    "update_ticket",
]


@transaction.atomic
def escalate_ticket(*, ticket: Ticket, team: Team, reason: str, actor: AbstractBaseUser | None = None) -> Escalation:
    """Hand the ticket to another department: on hold for that team, under that team's response
    target, until they hand it back. One hand-over at a time."""
    if not reason.strip():
        raise DomainError("required", _("Say why the ticket is escalated."), field="reason")
    ticket = _lock_open(ticket)
    if ticket.team_id == team.pk:
        raise DomainError("same_team", _("The ticket is with this team already."), field="team")
    if ticket.escalations.filter(kind=Escalation.Kind.MANUAL, returned_at=None).exists():
        raise DomainError("already_escalated", _("The ticket is escalated already; it must be handed back first."))
    now = timezone.now()
    old_status = ticket.status
    if ticket.status != S.ON_HOLD:
        _check_transition(ticket, S.ON_HOLD)
        _apply_status(ticket, S.ON_HOLD, at=now)
        _status_changed(ticket, old=old_status, at=now)
    escalation = Escalation.objects.create(
        ticket=ticket, kind=Escalation.Kind.MANUAL, level=0, from_team=ticket.team, to_team=team,
        reason=reason.strip()[:500], created_by=actor if getattr(actor, "pk", None) else None, created_at=now,
    )
    clock = sla.start_handover(ticket, team=team, at=now)
    escalation.response_due_at = clock.due_at
    escalation.save(update_fields=["response_due_at"])
    ticket.team = team
    ticket.assignee = None
    _save(ticket, actor=actor, reason="escalated")
    webhooks.emit("escalation.created", sla.escalation_data(escalation))
    if ticket.status != old_status:
        webhooks.emit("ticket.status_changed", {**ticket_data(ticket), "previous_status": old_status, "reason": "escalated"})
    return escalation


@transaction.atomic
def hand_back_ticket(*, ticket: Ticket, note: str = "", actor: AbstractBaseUser | None = None) -> Escalation:
    """The escalated team is done: the ticket returns, open, to the team that escalated it."""
    ticket = _lock_open(ticket)
    escalation = ticket.escalations.filter(kind=Escalation.Kind.MANUAL, returned_at=None).first()
    if escalation is None:
        raise DomainError("not_escalated", _("The ticket is not escalated to another team."))
    now = timezone.now()
    escalation.returned_at = now
    if note.strip():
        escalation.reason = f"{escalation.reason}\n→ {note.strip()}"[:500]
    escalation.save(update_fields=["returned_at", "reason"])
    sla.end_handover(ticket, at=now)
    old_status = ticket.status
    if ticket.status == S.ON_HOLD:
        _apply_status(ticket, S.OPEN, at=now)
        _status_changed(ticket, old=old_status, at=now)
    ticket.team = escalation.from_team
    ticket.assignee = None
    _save(ticket, actor=actor, reason="handed_back")
    webhooks.emit("ticket.updated", {**ticket_data(ticket), "changed": ["team", "status"]})
    return escalation
