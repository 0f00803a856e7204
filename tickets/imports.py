"""Import ticket history from another helpdesk: one JSON object per line, or CSV (imports_csv).

Every line is checked first; a file with a bad line writes nothing unless the caller asks for
the good lines only (partial). Lines are validated one by one and written in batches (a few queries per batch, not per
line), so 100,000 tickets take minutes. Times come from the file: first response, solve and
close times are the history's, not the import's. Re-importing the same external ids updates
tickets and never duplicates them or their messages. Imports send no webhooks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from helpdesk import roles
from helpdesk.history import bulk_attribution
from helpdesk.models import Agent, Channel, Customer, Team
from helpdesk.textfiles import AUTO, MAX_JSON_DEPTH, SNIFF_BYTES, decoded_lines, json_too_deep, sniff_encoding

from . import sla
from .models import Category, Csat, Message, SlaClock, Ticket

BATCH_SIZE = 500
TICKET_FIELDS = [
    "subject", "channel", "category", "priority", "status", "team", "assignee", "customer", "created_at",
    "updated_at", "first_response_at", "last_customer_message_at", "solved_at", "closed_at", "public_replies", "reopens",
]


class CustomerLine(serializers.Serializer):
    external_id = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    tier = serializers.ChoiceField(choices=Customer.Tier.choices, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not any(data.get(f) for f in ("external_id", "phone", "email")):
            raise serializers.ValidationError("needs an external_id, phone or email")
        return data


class MessageLine(serializers.Serializer):
    external_id = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    author = serializers.ChoiceField(choices=Message.AuthorKind.choices)
    agent = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)
    body = serializers.CharField(trim_whitespace=False)
    sent_at = serializers.DateTimeField()
    internal = serializers.BooleanField(default=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["author"] == Message.AuthorKind.CUSTOMER and data["internal"]:
            raise serializers.ValidationError("a customer message cannot be internal")
        return data


class EventLine(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    at = serializers.DateTimeField()


class CsatLine(serializers.Serializer):
    stars = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, default="", allow_blank=True)
    at = serializers.DateTimeField()


class TicketLine(serializers.Serializer):
    external_id = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=255)
    channel = serializers.ChoiceField(choices=Channel.choices)
    category = serializers.SlugField(required=False, allow_null=True, default=None)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, default=Ticket.Priority.NORMAL)
    customer = CustomerLine()
    team = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    assignee = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)
    messages = MessageLine(many=True, allow_empty=False)
    events = EventLine(many=True, required=False, default=list)
    csat = CsatLine(required=False, allow_null=True, default=None)


LineError = tuple[int, str, str]  # (line, field, message): field "" when the whole line is wrong
# A source gives a fresh iterable of the file's lines on every call: checking and writing read it twice.
Source = Callable[[], Iterable[bytes | str]]
Progress = Callable[[str, int], None]  # (phase "checking" or "writing", lines done in it)
FORMATS = ("jsonl", "csv")


@dataclass
class ImportReport:
    """What an import did. written is False when errors stopped it before anything was written."""

    created: int = 0
    updated: int = 0
    lines: int = 0
    written: bool = True
    errors: list[LineError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({line for line, _field, _message in self.errors})

    def as_dict(self, max_errors: int | None = None) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "failed": self.failed,
            "written": self.written,
            "errors": [
                {"line": line, "field": name, "error": f"{name}: {message}" if name else message}
                for line, name, message in self.errors[:max_errors]
            ],
        }


@dataclass
class Record:
    """One ticket as read from the file, before validation; place() turns a validation error's
    path (messages[1].sent_at) into the (line, field) the user sees."""

    line: int
    data: dict[str, Any] | None
    errors: list[LineError]
    place: Callable[[str], tuple[int, str]] | None = None


def _flatten(errors: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, message) pairs of a serializer's nested errors."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, int):  # DRF gives a list's errors by index
                path = f"{prefix}[{key}]"
            else:
                path = prefix if key == "non_field_errors" else f"{prefix}.{key}" if prefix else str(key)
            yield from _flatten(value, path)
    elif isinstance(errors, list) and errors and isinstance(errors[0], (dict, list)):
        for index, item in enumerate(errors):
            if item:
                yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, " ".join(str(e) for e in errors)


def jsonl_records(lines: Iterable[bytes | str], encoding: str = "utf-8") -> Iterator[Record]:
    """One record per non-blank line."""
    for number, text, problem in decoded_lines(lines, encoding):
        if text is None:
            yield Record(number, None, [(number, "", problem)])
            continue
        if not text.strip():
            continue
        if json_too_deep(text):
            yield Record(number, None, [(number, "", _("nests deeper than %(limit)d levels") % {"limit": MAX_JSON_DEPTH})])
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Record(number, None, [(number, "", f"not JSON: {exc.msg} at column {exc.colno}")])
            continue
        if not isinstance(obj, dict):
            yield Record(number, None, [(number, "", "not a JSON object")])
            continue
        yield Record(number, obj, [], lambda path, n=number: (n, path))


def records(source: Source, *, fmt: str = "jsonl", encoding: str = AUTO) -> Iterator[Record]:
    """The file's tickets in order, in either format."""
    if fmt == "csv":
        from .imports_csv import csv_records

        if encoding == AUTO:
            encoding = sniff_encoding(_head(source))
        return csv_records(source(), encoding)
    if fmt != "jsonl":
        raise ValueError(f"unknown format {fmt!r}")
    return jsonl_records(source(), "utf-8" if encoding == AUTO else encoding)


def _head(source: Source) -> bytes:
    head = b""
    lines = iter(source())
    for raw in lines:
        head += raw if isinstance(raw, bytes) else raw.encode()
        if len(head) >= SNIFF_BYTES:
            break
    close = getattr(lines, "close", None)
    if close is not None:
        close()  # a generator reading a file closes it
    return head


def parse_records(items: Iterable[Record]) -> Iterator[tuple[Record, dict[str, Any] | None, list[LineError]]]:
    """Each record with its valid data, or None and its errors at their lines and fields."""
    for record in items:
        if record.errors or record.data is None or record.place is None:
            yield record, None, record.errors
            continue
        line = TicketLine(data=record.data)
        if line.is_valid():
            yield record, dict(line.validated_data), []
        else:
            yield record, None, [(*record.place(path), message) for path, message in _flatten(line.errors)]


def import_tickets(
    source: Source | Iterable[str | bytes], *, fmt: str = "jsonl", encoding: str = AUTO, partial: bool = False,
    progress: Progress = lambda phase, done: None,
) -> ImportReport:
    """Check every line, then write. Any bad line and nothing is written (report.written is
    False), unless partial: then the good lines are written and the bad ones reported.

    Writing goes in batches of BATCH_SIZE, each its own transaction; a run stopped midway (the
    database went away) is finished by running the same file again: re-imports never duplicate.
    """
    if not callable(source):
        kept = list(source)  # one pass only: keep the lines for the second
        source = lambda: kept  # noqa: E731
    report = ImportReport()
    importer = _Importer()
    batch: list[tuple[Record, dict[str, Any]]] = []
    for record, data, errors in parse_records(records(source, fmt=fmt, encoding=encoding)):
        report.lines += 1
        report.errors.extend(errors)
        if data is not None:
            batch.append((record, data))
        if len(batch) >= BATCH_SIZE:
            importer.check(batch, report)
            batch = []
        if report.lines % BATCH_SIZE == 0:
            progress("checking", report.lines)
    importer.check(batch, report)
    progress("checking", report.lines)
    report.errors.sort()
    if report.errors and not partial:
        report.written = False
        return report
    bad = {line for line, _field, _message in report.errors}
    done = 0
    lines: list[tuple[int, dict[str, Any]]] = []
    for record, data, _errors in parse_records(records(source, fmt=fmt, encoding=encoding)):
        done += 1
        if data is not None and record.line not in bad:
            lines.append((record.line, data))
        if len(lines) >= BATCH_SIZE:
            importer.write(lines, report)
            lines = []
            progress("writing", done)
    if lines:
        importer.write(lines, report)
    progress("writing", done)
    report.errors.sort()
    return report


def _message_key(message: dict[str, Any]) -> str:
    """The message's external id, or one derived from what it is, so re-imports match it."""
    if message["external_id"]:
        return message["external_id"]
    digest = hashlib.sha1(
        f"{message['author']}|{message['sent_at'].isoformat()}|{message['body']}".encode()
    ).hexdigest()[:20]
    return f"import:{digest}"


class ImportLineError(Exception):
    """A line names something the import may not create or change."""


class _Importer:
    """Caches teams, agents and categories across batches; writes one batch at a time."""

    def __init__(self) -> None:
        self.teams: dict[str, Team] = {}
        self.agents: dict[str, Agent] = {}
        self.categories = {c.code: c for c in Category.objects.all()}

    def check(self, batch: list[tuple[Record, dict[str, Any]]], report: ImportReport) -> None:
        """What only the database can tell, without writing: unknown categories, and users who
        exist but are not agents (an import never makes them agents)."""
        names = {d["assignee"] for _, d in batch if d["assignee"]}
        names |= {m["agent"] for _, d in batch for m in d["messages"] if m["agent"]}
        taken = set(User.objects.filter(username__in=names, agent__isnull=True).values_list("username", flat=True))
        for record, data in batch:
            assert record.place is not None
            if data["category"] and data["category"] not in self.categories:
                report.errors.append(
                    (*record.place("category"), _("unknown code “%(code)s”") % {"code": data["category"]})
                )
            people = [("assignee", data["assignee"])]
            people += [(f"messages[{i}].agent", m["agent"]) for i, m in enumerate(data["messages"])]
            for path, username in people:
                if username in taken:
                    report.errors.append(
                        (*record.place(path), _("user “%(name)s” exists and is not an agent") % {"name": username})
                    )

    def write(self, batch: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
        unknown = [(n, d) for n, d in batch if d["category"] and d["category"] not in self.categories]
        for number, data in unknown:
            report.errors.append((number, "category", f"unknown code “{data['category']}”"))
        batch = [(n, d) for n, d in batch if not (d["category"] and d["category"] not in self.categories)]
        # Within one batch the last line for an external id wins, as if imported in order.
        by_external = {d["external_id"]: (n, d) for n, d in batch}
        cached = (dict(self.teams), dict(self.agents))
        try:
            with transaction.atomic():
                created, updated = self._write(list(by_external.values()))
        except Exception as exc:  # noqa: BLE001 - isolate the failing line, keep the good ones
            self.teams, self.agents = cached  # what the rolled-back batch made is gone
            if len(by_external) == 1:
                (number, _), = by_external.values()
                reason = str(exc) if isinstance(exc, ImportLineError) else f"{type(exc).__name__}: {exc}"
                report.errors.append((number, "", reason))
                return
            for item in by_external.values():
                self.write([item], report)
            return
        report.created += created
        report.updated += updated

    def _write(self, batch: list[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
        self._ensure_people([d for _, d in batch])
        customers = self._customers([d["customer"] for _, d in batch])
        existing = {t.external_id: t for t in Ticket.objects.filter(external_id__in=[d["external_id"] for _, d in batch])}
        new, matched, changed = [], [], []
        for _, data in batch:
            ticket = existing.get(data["external_id"]) or Ticket(external_id=data["external_id"])
            before = _values(ticket) if ticket.pk else None
            self._fill(ticket, data, customers[_customer_key(data["customer"])])
            if ticket.pk is None:
                new.append(ticket)
            else:
                matched.append(ticket)
                if _values(ticket) != before:  # a re-import of the same history writes nothing
                    changed.append(ticket)
        if new:
            bulk_create_with_history(
                new, Ticket, batch_size=BATCH_SIZE, default_change_reason="import", **bulk_attribution()
            )
        if changed:
            bulk_update_with_history(
                changed, Ticket, TICKET_FIELDS, batch_size=BATCH_SIZE, default_change_reason="import", **bulk_attribution()
            )
        tickets = {t.external_id: t for t in [*new, *matched]}
        # Recomputed from the new history, except clocks with escalations: those are our own record.
        SlaClock.objects.filter(ticket__in=changed, escalations__isnull=True).delete()
        kept = set(SlaClock.objects.filter(ticket__in=changed).values_list("ticket_id", "metric"))
        clocks = sla.clocks_from_history([*new, *changed], now=timezone.now())
        SlaClock.objects.bulk_create([c for c in clocks if (c.ticket_id, c.metric) not in kept], batch_size=2000)
        self._messages(batch, tickets)
        _count_replies([t.pk for t in matched])
        self._csat(batch, tickets)
        return len(new), len(matched)

    def _ensure_people(self, batch: list[dict[str, Any]]) -> None:
        names = {d["team"] for d in batch if d["team"]} - set(self.teams)
        for name in names:
            self.teams[name] = Team.objects.get_or_create(name=name)[0]
        usernames = {d["assignee"] for d in batch if d["assignee"]}
        usernames |= {m["agent"] for d in batch for m in d["messages"] if m["agent"]}
        usernames -= set(self.agents)
        if not usernames:
            return
        for agent in Agent.objects.select_related("user").filter(user__username__in=usernames):
            self.agents[agent.user.username] = agent
        group = Group.objects.get(name=roles.AGENT)
        missing = usernames - set(self.agents)
        taken = set(User.objects.filter(username__in=missing).values_list("username", flat=True))
        if taken:
            # An import never turns an existing user (an administrator, say) into an agent.
            raise ImportLineError(f"user “{sorted(taken)[0]}” exists and is not an agent")
        for username in missing:
            # Imported agents exist for the history; they cannot log in until given a password.
            user = User(username=username, is_staff=True)
            user.set_unusable_password()
            user.save()
            user.groups.add(group)
            self.agents[username] = Agent.objects.create(user=user, display_name=username)

    def _customers(self, lines: list[dict[str, Any]]) -> dict[str, Customer]:
        found: dict[str, Customer] = {}
        for field_name in ("external_id", "phone", "email"):
            wanted = {c[field_name] for c in lines if c[field_name] and _customer_key(c) not in found}
            if not wanted:
                continue
            matches = {getattr(c, field_name): c for c in Customer.objects.filter(**{f"{field_name}__in": wanted}).order_by("-pk")}
            for line in lines:
                key = _customer_key(line)
                if key not in found and line[field_name] in matches:
                    found[key] = matches[line[field_name]]
        missing = {_customer_key(c): c for c in lines if _customer_key(c) not in found}
        created = Customer.objects.bulk_create(
            Customer(
                external_id=c["external_id"], name=c["name"] or c["phone"] or c["email"] or c["external_id"],
                phone=c["phone"], email=c["email"], tier=c.get("tier") or Customer.Tier.STANDARD,
            )
            for c in missing.values()
        )
        found.update(zip(missing, created, strict=True))
        return found

    def _fill(self, ticket: Ticket, data: dict[str, Any], customer: Customer) -> None:
        messages = sorted(data["messages"], key=lambda m: m["sent_at"])
        events = sorted(data["events"], key=lambda e: e["at"])
        replies = [m["sent_at"] for m in messages if m["author"] == Message.AuthorKind.AGENT and not m["internal"]]
        from_customer = [m["sent_at"] for m in messages if m["author"] == Message.AuthorKind.CUSTOMER]
        if events:
            status = events[-1]["status"]
        else:
            status = Ticket.Status.OPEN if replies else Ticket.Status.NEW
        solved = [e["at"] for e in events if e["status"] == Ticket.Status.SOLVED]
        closed = [e["at"] for e in events if e["status"] == Ticket.Status.CLOSED]
        ticket.subject = data["subject"]
        ticket.channel = data["channel"]
        ticket.category = self.categories.get(data["category"]) if data["category"] else None
        ticket.priority = data["priority"]
        ticket.status = status
        ticket.team = self.teams.get(data["team"]) if data["team"] else None
        ticket.assignee = self.agents.get(data["assignee"]) if data["assignee"] else None
        ticket.customer = customer
        ticket.created_at = messages[0]["sent_at"]
        ticket.updated_at = max([messages[-1]["sent_at"], *(e["at"] for e in events)])
        ticket.first_response_at = replies[0] if replies else None
        ticket.last_customer_message_at = from_customer[-1] if from_customer else None
        ticket.solved_at = solved[-1] if solved and status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED) else None
        ticket.closed_at = closed[-1] if closed and status == Ticket.Status.CLOSED else None
        # A re-import never lowers what the helpdesk counted since: replies are recounted from the
        # stored messages once they are written (_count_replies), reopens keep the larger count.
        ticket.public_replies = max(ticket.public_replies or 0, len(replies))
        ticket.reopens = max(ticket.reopens or 0, _reopens(events, from_customer))

    def _messages(self, batch: list[tuple[int, dict[str, Any]]], tickets: dict[str, Ticket]) -> None:
        ids = [t.pk for t in tickets.values()]
        seen = set(Message.objects.filter(ticket_id__in=ids).values_list("ticket_id", "channel_message_id"))
        new = []
        now = timezone.now()
        for _, data in batch:
            ticket = tickets[data["external_id"]]
            for message in data["messages"]:
                key = _message_key(message)
                if (ticket.pk, key) in seen:
                    continue
                seen.add((ticket.pk, key))
                new.append(
                    Message(
                        ticket_id=ticket.pk, author_kind=message["author"], is_internal=message["internal"],
                        author_agent=self.agents.get(message["agent"]) if message["author"] == "agent" else None,
                        body=message["body"], sent_at=message["sent_at"], created_at=now, channel_message_id=key,
                    )
                )
        Message.objects.bulk_create(new, batch_size=2000)

    def _csat(self, batch: list[tuple[int, dict[str, Any]]], tickets: dict[str, Ticket]) -> None:
        ratings = [
            Csat(
                ticket_id=ticket.pk, stars=d["csat"]["stars"], comment=d["csat"]["comment"], rated_at=d["csat"]["at"],
                source=Csat.Source.IMPORT, team_id=ticket.team_id, agent_id=ticket.assignee_id,  # whom it counts for
            )
            for _, d in batch
            if d["csat"]
            for ticket in [tickets[d["external_id"]]]
        ]
        if ratings:
            Csat.objects.bulk_create(
                ratings, update_conflicts=True, unique_fields=["ticket"],
                update_fields=["stars", "comment", "rated_at", "team", "agent"],
            )


def _reopens(events: list[dict[str, Any]], customer_messages: list[Any]) -> int:
    """How often the history reopens a solved ticket: a status other than solved or closed after
    a solve, or the customer writing before the next status (docs/metrics.md)."""
    count = 0
    for index, event in enumerate(events):
        if event["status"] != Ticket.Status.SOLVED:
            continue
        following = events[index + 1] if index + 1 < len(events) else None
        moved_back = following is not None and following["status"] not in (Ticket.Status.SOLVED, Ticket.Status.CLOSED)
        wrote = any(event["at"] < sent and (following is None or sent < following["at"]) for sent in customer_messages)
        count += moved_back or wrote
    return count


def _count_replies(ticket_ids: list[int]) -> None:
    """Tickets imported before: their public replies as stored now, the helpdesk's own included."""
    if not ticket_ids:
        return
    replies = (
        Message.objects.filter(ticket=OuterRef("pk"), author_kind=Message.AuthorKind.AGENT, is_internal=False)
        .order_by()
        .values("ticket")
        .annotate(n=Count("*"))
        .values("n")
    )
    Ticket.objects.filter(pk__in=ticket_ids).update(public_replies=Coalesce(Subquery(replies, output_field=IntegerField()), 0))


def _values(ticket: Ticket) -> tuple[Any, ...]:
    return tuple(getattr(ticket, Ticket._meta.get_field(name).attname) for name in TICKET_FIELDS)


def _customer_key(line: dict[str, Any]) -> str:
    return f"{line['external_id']}|{line['phone']}|{line['email']}"
