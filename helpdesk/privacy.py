"""Keeping customer data: retention, export and erasure on request.

A customer's data spans the apps (tickets, ratings, complaints, QA reviews), so this is the one
helpdesk module that reads across them. The rules:

- Anonymising a conversation keeps its shape and every number a report reads (timestamps,
  counters, SLA clocks, stars, QA scores) and takes the customer out of its text: their name,
  phone, email and ids, and anything that looks like a phone, email, ID or card number
  (`helpdesk.pii.mask_text`), in the live rows and in their audit history alike. Attachments are
  links to the channel's storage (the helpdesk keeps no files): their names and links go, their
  type and size stay. `Ticket.anonymised_at` marks a ticket done, so a second pass skips it.
- Retention anonymises tickets closed more than RETENTION_CONVERSATION_DAYS ago (0 keeps them
  for ever), one locked batch per transaction, and forgets finished webhook deliveries as old.
- Export writes everything about one customer as JSON, a ticket chunk at a time.
- Erasure replaces the customer's details with a placeholder, deletes their identities and tags,
  and anonymises all their tickets; refused while any ticket of theirs is not closed.

Exports and erasures are audited as a row in the customer's history (who, when, a reason code)
and a log line that names ids only.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from qa.models import CriterionScore, Dispute, Review
from tickets.models import Complaint, Csat, Escalation, Message, Ticket

from .errors import DomainError
from .models import Customer, CustomerIdentity, WebhookDelivery
from .notifications import in_default_language
from .pii import mask_text

logger = logging.getLogger(__name__)

REMOVED = "***"
ERASED_NAME = gettext_lazy("Erased customer #%(id)s")
EXPORT_FORMAT = "helpdesk.customer-export.v1"
EXPORT_REASON, ERASE_REASON = "privacy_export", "privacy_erase"
BATCH = 200  # tickets anonymised per transaction
ROWS = 500  # rows read and written at a time inside a batch
EXPORT_CHUNK = 100  # tickets (with their messages) read per query
LISTED = 20  # open tickets named in a refusal


# --- taking one customer out of a text --------------------------------------------------


class Scrubber:
    """Removes one customer's details from texts, then masks anything that looks like a phone,
    email, ID or card number. Phones match with or without spaces and dashes between digits."""

    def __init__(self, values: Iterable[str]) -> None:
        patterns = {_pattern(value.strip()) for value in values if value}
        patterns.discard("")
        # Longest first, so an email is removed whole before a name inside it.
        ordered = sorted(patterns, key=len, reverse=True)
        self._pattern = re.compile("|".join(ordered), re.IGNORECASE) if ordered else None

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(REMOVED, text)
        return mask_text(text)


def _pattern(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if re.fullmatch(r"[\d\s()+-]+", value) and len(digits) >= 5:
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]  # +86 138…: the national number is what people type
        return r"[\s-]?".join(digits)
    # A one-character name or a short id would take letters out of every other word.
    return re.escape(value) if len(value) >= 2 else ""


def scrubbers_for(customer_ids: Iterable[int]) -> dict[int, Scrubber]:
    """One Scrubber per customer, knowing their current and past details (three queries)."""
    ids = set(customer_ids)
    values: dict[int, set[str]] = defaultdict(set)
    fields = ("id", "name", "phone", "email", "external_id")
    current = Customer.objects.filter(pk__in=ids).values_list(*fields)
    past = Customer.history.model.objects.filter(id__in=ids).values_list(*fields).distinct()
    identities = CustomerIdentity.objects.filter(customer_id__in=ids).values_list("customer_id", "external_id")
    for pk, name, phone, email, external_id in [*current, *past]:
        values[pk].update((name, phone, email, _long_id(external_id)))
    for pk, external_id in identities:
        values[pk].add(_long_id(external_id))
    return {pk: Scrubber(values[pk]) for pk in ids}


def scrubber_for(customer_id: int) -> Scrubber:
    """The Scrubber of one customer: for texts kept elsewhere (training cases, search queries)."""
    return scrubbers_for([customer_id])[customer_id]


def _long_id(value: str) -> str:
    # A short shop or channel id (say "1024") is too likely to be part of an order number.
    return value if len(value) >= 6 else ""


def _attachments(value: Any, scrub: Scrubber) -> Any:
    """Keep what a report could count (type, size); names and links identify the customer."""
    if not isinstance(value, list):
        return []
    return [{k: item[k] for k in ("content_type", "size") if k in item} for item in value if isinstance(item, dict)]


def _text(value: str, scrub: Scrubber) -> str:
    return scrub(value or "")


# --- anonymising conversations -----------------------------------------------------------

Transform = Callable[[Any, Scrubber], Any]


def _rewrite(queryset: models.QuerySet, transforms: dict[str, Transform], scrubber_of: Callable[[Any], Scrubber]) -> int:
    """Apply `transforms` to every row of `queryset`, ROWS at a time (keyset pages, so no cursor
    stays open while we write), writing only rows that change; returns how many changed."""
    model = queryset.model
    pk = model._meta.pk.attname
    changed, last = 0, None
    while True:
        page = queryset.order_by(pk) if last is None else queryset.filter(**{f"{pk}__gt": last}).order_by(pk)
        rows = list(page[:ROWS])
        if not rows:
            return changed
        dirty = []
        for row in rows:
            scrub = scrubber_of(row)
            before = [getattr(row, field) for field in transforms]
            for field, transform in transforms.items():
                setattr(row, field, transform(getattr(row, field), scrub))
            if [getattr(row, field) for field in transforms] != before:
                dirty.append(row)
        if dirty:
            model.objects.bulk_update(dirty, list(transforms))
            changed += len(dirty)
        if len(rows) < ROWS:
            return changed
        last = getattr(rows[-1], pk)


def _anonymise(tickets: Sequence[Ticket], *, now: datetime) -> None:
    """Anonymise the conversations of `tickets` (locked by the caller, with pk, customer_id,
    subject and conversation_id loaded): a fixed number of queries per ROWS rows touched."""
    if not tickets:
        return
    scrubbers = scrubbers_for(t.customer_id for t in tickets)
    by_ticket = {t.pk: scrubbers[t.customer_id] for t in tickets}
    ids = list(by_ticket)
    text = {"subject": _text}
    for ticket in tickets:
        ticket.subject = by_ticket[ticket.pk](ticket.subject)
        # A chat's conversation id is often the customer's id on that platform.
        ticket.conversation_id = ""
        ticket.anonymised_at = now
    Ticket.objects.bulk_update(tickets, ["subject", "conversation_id", "anonymised_at"])

    # Simple-history keeps a copy of each version: those lose the same details.
    blank = {"conversation_id": lambda value, scrub: ""}
    _rewrite(Ticket.history.model.objects.filter(id__in=ids).only("history_id", "id", "subject", "conversation_id"),
             {**text, **blank}, lambda row: by_ticket[row.id])
    _rewrite(Message.objects.filter(ticket_id__in=ids).only("id", "ticket_id", "body", "attachments"),
             {"body": _text, "attachments": _attachments}, lambda row: by_ticket[row.ticket_id])
    _rewrite(Csat.objects.filter(ticket_id__in=ids).exclude(comment="").only("id", "ticket_id", "comment"),
             {"comment": _text}, lambda row: by_ticket[row.ticket_id])
    _rewrite(Escalation.objects.filter(ticket_id__in=ids).exclude(reason="").only("id", "ticket_id", "reason"),
             {"reason": _text}, lambda row: by_ticket[row.ticket_id])

    # What the team lead and the QA inspectors wrote may quote the customer.
    outcome = {"outcome": _text}
    _rewrite(Complaint.objects.filter(ticket_id__in=ids).exclude(outcome="").only("id", "ticket_id", "outcome"),
             outcome, lambda row: by_ticket[row.ticket_id])
    _rewrite(Complaint.history.model.objects.filter(ticket_id__in=ids).exclude(outcome="")
             .only("history_id", "ticket_id", "outcome"), outcome, lambda row: by_ticket[row.ticket_id])
    review_text = {"strengths": _text, "shortcomings": _text, "coaching": _text}
    review_fields = ("ticket_id", *review_text)
    _rewrite(Review.objects.filter(ticket_id__in=ids).only("id", *review_fields),
             review_text, lambda row: by_ticket[row.ticket_id])
    _rewrite(Review.history.model.objects.filter(ticket_id__in=ids).only("history_id", *review_fields),
             review_text, lambda row: by_ticket[row.ticket_id])
    review_ticket = dict(Review.objects.filter(ticket_id__in=ids).values_list("pk", "ticket_id"))
    if review_ticket:
        _rewrite(CriterionScore.objects.filter(review_id__in=review_ticket).exclude(comment="")
                 .only("id", "review_id", "comment"), {"comment": _text}, lambda row: by_ticket[review_ticket[row.review_id]])
        dispute_text = {"reason": _text, "resolution": _text}
        _rewrite(Dispute.objects.filter(review_id__in=review_ticket).only("id", "review_id", *dispute_text),
                 dispute_text, lambda row: by_ticket[review_ticket[row.review_id]])
        _rewrite(Dispute.history.model.objects.filter(review_id__in=review_ticket)
                 .only("history_id", "review_id", *dispute_text), dispute_text,
                 lambda row: by_ticket[review_ticket[row.review_id]])


def _unfinished_locked(queryset: models.QuerySet[Ticket], batch_size: int, *, skip_locked: bool) -> list[Ticket]:
    return list(
        queryset.filter(anonymised_at__isnull=True)
        .select_for_update(skip_locked=skip_locked, of=("self",))
        .only("id", "customer_id", "subject", "conversation_id")[:batch_size]
    )


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    """Tickets closed before this are past retention; None when conversations are kept for ever."""
    days = settings.RETENTION_CONVERSATION_DAYS
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def anonymise_expired_conversations(*, now: datetime | None = None, batch_size: int = BATCH, max_batches: int | None = None) -> int:
    """Anonymise the conversations of tickets closed more than RETENTION_CONVERSATION_DAYS ago;
    returns how many tickets. Each batch is one transaction over rows locked with SKIP LOCKED,
    so two runs share the work, a killed run loses at most one batch, and a second run finds
    nothing to do. Stops after `max_batches` (the task re-queues itself for the rest)."""
    now = now or timezone.now()
    cutoff = retention_cutoff(now)
    if cutoff is None:
        return 0
    done = batches = 0
    while max_batches is None or batches < max_batches:
        count = _anonymise_expired_batch(cutoff=cutoff, now=now, batch_size=batch_size)
        done, batches = done + count, batches + 1
        if count < batch_size:
            break
    forgotten = _forget_old_deliveries(cutoff)
    if done or forgotten:
        logger.info("privacy.retention anonymised_tickets=%d forgotten_deliveries=%d", done, forgotten)
    return done


@transaction.atomic
def _anonymise_expired_batch(*, cutoff: datetime, now: datetime, batch_size: int) -> int:
    expired = Ticket.objects.filter(status=Ticket.Status.CLOSED, closed_at__lt=cutoff).order_by("closed_at", "id")
    tickets = _unfinished_locked(expired, batch_size, skip_locked=True)
    _anonymise(tickets, now=now)
    return len(tickets)


def _forget_old_deliveries(cutoff: datetime, *, batch_size: int = 1000) -> int:
    """Webhook deliveries carry subjects and message bodies: delete finished ones older than the
    retention period (in id order, which follows creation, so each batch reads few rows)."""
    finished = WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status=WebhookDelivery.Status.PENDING)
    deleted = 0
    while True:
        ids = list(finished.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += WebhookDelivery.objects.filter(id__in=ids).delete()[0]


# --- export ------------------------------------------------------------------------------


def export_customer(*, customer: Customer, actor: AbstractBaseUser) -> Iterator[str]:
    """Record who exported whom (a history row and a log line), then return the customer's data
    as JSON text in pieces: profile, identities, and each ticket with its messages, rating and
    complaint. Reads a fixed number of queries per EXPORT_CHUNK tickets, whatever their size."""
    customer._history_user = actor
    customer._change_reason = EXPORT_REASON
    type(customer)._audited_records.create_historical_record(customer, "~")
    logger.info("privacy.export customer=%s actor=%s", customer.pk, actor.pk)
    return _export_pieces(customer.pk)


def export_filename(customer_id: int) -> str:
    return f"customer-{customer_id}.json"


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _export_pieces(customer_id: int) -> Iterator[str]:
    customer = Customer.objects.prefetch_related("tags", "identities").get(pk=customer_id)
    head = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now(),
        "customer": {
            "id": customer.pk,
            "external_id": customer.external_id,
            "name": customer.name,
            "phone": customer.phone,
            "email": customer.email,
            "tier": customer.tier,
            "language": customer.language,
            "tags": sorted(tag.name for tag in customer.tags.all()),
            "first_seen_at": customer.first_seen_at,
            "created_at": customer.created_at,
        },
        "identities": [
            {"channel": identity.channel, "external_id": identity.external_id}
            for identity in sorted(customer.identities.all(), key=lambda i: i.pk)
        ],
    }
    yield _dumps(head)[:-1] + ', "tickets": ['
    separator, last_pk = "", 0
    while True:
        tickets = list(
            Ticket.objects.filter(customer_id=customer_id, pk__gt=last_pk)
            .select_related("category", "csat__complaint")
            .order_by("pk")[:EXPORT_CHUNK]
        )
        if not tickets:
            break
        messages: dict[int, list[Message]] = defaultdict(list)
        for message in Message.objects.filter(ticket_id__in=[t.pk for t in tickets]).order_by("ticket_id", "sent_at", "id"):
            messages[message.ticket_id].append(message)
        for ticket in tickets:
            yield separator + _dumps(_ticket_json(ticket, messages[ticket.pk]))
            separator = ","
        last_pk = tickets[-1].pk
        if len(tickets) < EXPORT_CHUNK:
            break
    yield "]}"


def _related(instance: Any, name: str) -> Any:
    try:
        return getattr(instance, name)
    except models.ObjectDoesNotExist:
        return None


def _ticket_json(ticket: Ticket, messages: list[Message]) -> dict[str, Any]:
    csat = _related(ticket, "csat")
    complaint = _related(csat, "complaint") if csat else None
    return {
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "category": ticket.category.code if ticket.category else None,
        "created_at": ticket.created_at,
        "first_response_at": ticket.first_response_at,
        "solved_at": ticket.solved_at,
        "closed_at": ticket.closed_at,
        "anonymised_at": ticket.anonymised_at,
        "messages": [
            {
                "id": m.pk,
                "author": m.author_kind,
                "internal": m.is_internal,
                "body": m.body,
                "attachments": m.attachments,
                "sent_at": m.sent_at,
            }
            for m in messages
        ],
        "csat": {"stars": csat.stars, "comment": csat.comment, "rated_at": csat.rated_at} if csat else None,
        "complaints": [
            {
                "status": complaint.status,
                "root_cause": complaint.root_cause,
                "outcome": complaint.outcome,
                "created_at": complaint.created_at,
                "closed_at": complaint.closed_at,
            }
        ] if complaint else [],
    }


# --- erasure -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    customer_id: int
    tickets_anonymised: int
    changed: bool  # False: erased before, nothing left to do


def erased_name(customer_id: int) -> str:
    """The placeholder an erased customer is known by, in the site's language."""
    return in_default_language(ERASED_NAME, id=customer_id)


def open_tickets(customer: Customer) -> list[str]:
    """References of the customer's tickets that are not closed (LISTED + 1 at most)."""
    ids = Ticket.objects.filter(customer_id=customer.pk).exclude(status=Ticket.Status.CLOSED)
    return [Ticket(pk=pk).reference for pk in ids.order_by("id").values_list("id", flat=True)[: LISTED + 1]]


@transaction.atomic
def erase_customer(*, customer: Customer, actor: AbstractBaseUser) -> Erasure:
    """Erase a customer's personal data: details replaced by a placeholder (in every history
    version too), identities and tags deleted, every ticket's conversation anonymised, metrics
    kept. Idempotent: a second call changes nothing. Raises DomainError `open_tickets` while any
    ticket of theirs is not closed (a reply could bring their details back)."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    unfinished = open_tickets(customer)
    if unfinished:
        listed = ", ".join(unfinished[:LISTED]) + (" …" if len(unfinished) > LISTED else "")
        message = _("Close the customer's open tickets first: %(tickets)s.") % {"tickets": listed}
        raise DomainError("open_tickets", message)

    now = timezone.now()
    anonymised = 0
    mine = Ticket.objects.filter(customer_id=customer.pk).order_by("id")
    while tickets := _unfinished_locked(mine, BATCH, skip_locked=False):
        _anonymise(tickets, now=now)
        anonymised += len(tickets)
    forgotten = _forget_deliveries_of(customer.pk)

    identities = CustomerIdentity.objects.filter(customer_id=customer.pk).delete()[0]
    tags = customer.tags.count()
    if tags:
        customer.tags.clear()
    placeholder = {"name": erased_name(customer.pk), "phone": "", "email": "", "external_id": ""}
    details_changed = any(getattr(customer, field) != value for field, value in placeholder.items())
    if details_changed:
        Customer.history.model.objects.filter(id=customer.pk).update(**placeholder)
        for field, value in placeholder.items():
            setattr(customer, field, value)
        customer._history_user = actor
        customer._change_reason = ERASE_REASON
        customer.save()
    changed = bool(details_changed or anonymised or identities or tags or forgotten)
    logger.info(
        "privacy.erase customer=%s actor=%s changed=%s tickets_anonymised=%d identities=%d",
        customer.pk, actor.pk, changed, anonymised, identities,
    )
    return Erasure(customer_id=customer.pk, tickets_anonymised=anonymised, changed=changed)


def _forget_deliveries_of(customer_id: int) -> int:
    """Finished webhook deliveries about the customer's tickets (their payloads hold subjects
    and message bodies). The payload is not indexed: one scan per erasure, a rare request."""
    references = [Ticket(pk=pk).reference for pk in Ticket.objects.filter(customer_id=customer_id).values_list("id", flat=True)]
    deleted = 0
    for start in range(0, len(references), ROWS):
        chunk = references[start : start + ROWS]
        about = Q(payload__reference__in=chunk) | Q(payload__ticket__in=chunk)
        finished = WebhookDelivery.objects.filter(about).exclude(status=WebhookDelivery.Status.PENDING)
        deleted += finished.delete()[0]
    return deleted
