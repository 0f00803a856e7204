"""The audit trail: every change to an audited model, and the admin's own log, newest first.

Each history table and django_admin_log is read by its own keyset query, ordered by
(date, id) descending and cut at the page size, and the streams are merged in Python. A page
costs one query per table, plus one for the users and one for the API keys it names, however
long the tables are; nothing counts the union, so pages go on with a cursor, not a number.

The admin's log is kept only for models without history (users, groups, skills, deletions of
unaudited things): for audited ones the history row says the same, with the version.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import islice
from typing import Any

from django.apps import apps
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import Q, QuerySet
from django.utils.translation import pgettext_lazy

from .models import ApiKey

LOG = "admin.logentry"  # the source key of the admin's log

CREATED, CHANGED, DELETED = "created", "changed", "deleted"
ACTIONS = {
    CREATED: pgettext_lazy("audit action", "created"),
    CHANGED: pgettext_lazy("audit action", "changed"),
    DELETED: pgettext_lazy("audit action", "deleted"),
}
HISTORY_TYPES = {"+": CREATED, "~": CHANGED, "-": DELETED}
LOG_FLAGS = {ADDITION: CREATED, CHANGE: CHANGED, DELETION: DELETED}

# The model's __str__ names a history row as it was at that version; these read related rows,
# which are joined in the page's query rather than fetched row by row.
NAMED_THROUGH: dict[str, tuple[str, ...]] = {
    "tickets.complaint": ("ticket",),
    "qa.samplescope": ("team",),
    "qa.samplerun": ("scope__team",),
    "qa.review": ("ticket", "agent"),
    "qa.dispute": ("review__ticket", "review__agent"),
}


@dataclass(frozen=True)
class Filters:
    """What the trail is narrowed to; `since` is included, `until` excluded (aware datetimes)."""

    user: int | None = None
    api_key: int | None = None
    record_type: str | None = None  # a model's label_lower: "tickets.ticket", "auth.user"
    action: str | None = None  # CREATED, CHANGED or DELETED
    since: datetime | None = None
    until: datetime | None = None
    object_id: int | None = None


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ended: entries strictly older than (at, source, id) come next."""

    at: datetime
    source: str
    id: int

    def __str__(self) -> str:
        return f"{self.at.astimezone(UTC).isoformat()}|{self.source}|{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises ValueError for anything but a cursor this module wrote."""
        at, source, id_ = text.split("|")
        moment = datetime.fromisoformat(at)
        # In UTC as written, and an id a database column holds: nothing else reaches a query.
        if moment.utcoffset() != timedelta(0) or source not in source_keys() or not (id_.isdigit() and len(id_) <= 18):
            raise ValueError(text)
        return cls(moment, source, int(id_))


@dataclass
class Entry:
    """One change as the page and the export show it."""

    at: datetime
    source: str
    id: int
    record_type: str  # label_lower of the changed model ("" if its type is gone)
    model: type[models.Model] | None
    object_id: str
    action: str
    user_id: int | None
    api_key_id: int | None
    reason: str  # a label for the codes tickets.history knows, else the code or admin message
    row: Any = field(repr=False)
    object: str = ""
    user: Any = None
    api_key: ApiKey | None = None
    url: str | None = None  # set by the admin page

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, self.id)

    @property
    def record_label(self) -> str:
        return str(self.model._meta.verbose_name) if self.model is not None else "?"

    @property
    def action_label(self) -> str:
        return str(ACTIONS[self.action])


@dataclass(frozen=True)
class Source:
    """One history table (its audited model's label_lower as key), or the admin's log."""

    key: str
    model: type[models.Model]  # the audited model; LogEntry for the admin's log
    table: type[models.Model]  # its history model; LogEntry for the admin's log

    @property
    def is_log(self) -> bool:
        return self.key == LOG

    @property
    def date_field(self) -> str:
        return "action_time" if self.is_log else "history_date"

    @property
    def id_field(self) -> str:
        return "id" if self.is_log else "history_id"

    def matching(self, filters: Filters) -> QuerySet | None:
        """The rows the filters allow, or None when this source cannot have any."""
        if self.is_log:
            return _log_matching(filters)
        if filters.record_type is not None and filters.record_type != self.key:
            return None
        rows = self.table._default_manager.all()
        if self.key in NAMED_THROUGH:
            rows = rows.select_related(*NAMED_THROUGH[self.key])
        wanted: dict[str, Any] = {}
        if filters.user is not None:
            wanted["history_user_id"] = filters.user
        if filters.api_key is not None:
            wanted["history_api_key_id"] = filters.api_key
        if filters.action is not None:
            wanted["history_type"] = {v: k for k, v in HISTORY_TYPES.items()}[filters.action]
        if filters.since is not None:
            wanted["history_date__gte"] = filters.since
        if filters.until is not None:
            wanted["history_date__lt"] = filters.until
        if filters.object_id is not None:
            wanted[self.model._meta.pk.attname] = filters.object_id
        return rows.filter(**wanted)

    def entry(self, row: Any) -> Entry:
        if self.is_log:
            model = row.content_type.model_class() if row.content_type is not None else None
            return Entry(
                at=row.action_time, source=LOG, id=row.id,
                record_type=model._meta.label_lower if model is not None else "", model=model,
                object_id=row.object_id or "", action=LOG_FLAGS.get(row.action_flag, CHANGED),
                user_id=row.user_id, api_key_id=None, reason=row.get_change_message(), row=row,
                object=row.object_repr,
            )
        return Entry(
            at=row.history_date, source=self.key, id=row.history_id, record_type=self.key, model=self.model,
            object_id=str(getattr(row, self.model._meta.pk.attname)), action=HISTORY_TYPES[row.history_type],
            user_id=row.history_user_id, api_key_id=row.history_api_key_id,
            reason=reason_label(row.history_change_reason), row=row,
        )


def reason_label(code: str | None) -> str:
    """Services store codes; those the ticket trail labels are labelled here the same way."""
    from tickets.history import (
        REASONS,  # helpdesk is below tickets; only this label is shared
    )

    if not code:
        return ""
    return str(REASONS.get(code, code))


def audited_models() -> list[type[models.Model]]:
    """Every model recorded by django-simple-history (many-to-many links are rows of their owner's history)."""
    return [
        model for model in apps.get_models()
        if getattr(model._meta, "simple_history_manager_attribute", None) and not model._meta.auto_created
    ]


@cache
def sources() -> tuple[Source, ...]:
    """The history table of every audited model, then the admin's log; sorted by key."""
    found = [
        Source(
            key=model._meta.label_lower, model=model,
            table=getattr(model, model._meta.simple_history_manager_attribute).model,
        )
        for model in audited_models()
    ]
    found.append(Source(key=LOG, model=LogEntry, table=LogEntry))
    return tuple(sorted(found, key=lambda source: source.key))


def source_keys() -> frozenset[str]:
    return frozenset(source.key for source in sources())


def record_types() -> list[type[models.Model]]:
    """Models the trail can show: the audited ones and, through the admin's log, those the
    admin edits without history."""
    from django.contrib import admin

    audited = set(audited_models())
    return sorted(
        (model for model in apps.get_models() if model in audited or admin.site.is_registered(model)),
        key=lambda model: model._meta.label_lower,
    )


def _log_matching(filters: Filters) -> QuerySet | None:
    if filters.api_key is not None:
        return None  # the admin is used with a session, never a key
    audited = audited_models()
    model = apps.get_model(filters.record_type) if filters.record_type is not None else None
    if model in audited:
        return None
    content_types = ContentType.objects.get_for_models(*audited, for_concrete_models=False)
    rows = LogEntry.objects.select_related("content_type").exclude(
        content_type_id__in=[content_type.pk for content_type in content_types.values()]
    )
    if model is not None:
        rows = rows.filter(content_type=ContentType.objects.get_for_model(model, for_concrete_model=False))
    wanted: dict[str, Any] = {}
    if filters.user is not None:
        wanted["user_id"] = filters.user
    if filters.action is not None:
        wanted["action_flag"] = {v: k for k, v in LOG_FLAGS.items()}[filters.action]
    if filters.since is not None:
        wanted["action_time__gte"] = filters.since
    if filters.until is not None:
        wanted["action_time__lt"] = filters.until
    if filters.object_id is not None:
        wanted["object_id"] = str(filters.object_id)
    return rows.filter(**wanted)


def _older_than(source: Source, cursor: Cursor) -> Q:
    """Rows of `source` after `cursor` in the order (date, source key, id) descending."""
    date, id_ = source.date_field, source.id_field
    if source.key < cursor.source:
        return Q(**{f"{date}__lte": cursor.at})
    if source.key > cursor.source:
        return Q(**{f"{date}__lt": cursor.at})
    # The first bound is implied by the second, but only it lets the date index start the scan
    # at the cursor: without it, a page deep in a big table reads every newer row first.
    same_instant = Q(**{date: cursor.at, f"{id_}__lt": cursor.id})
    return Q(**{f"{date}__lte": cursor.at}) & (Q(**{f"{date}__lt": cursor.at}) | same_instant)


def _stream(source: Source, rows: QuerySet, before: Cursor | None, chunk: int) -> Iterator[Entry]:
    """The source's entries newest first, read `chunk` rows per query, each query only when
    the previous chunk is used up."""
    ordered = rows.order_by(f"-{source.date_field}", f"-{source.id_field}")
    bound = _older_than(source, before) if before is not None else Q()
    while True:
        batch = [source.entry(row) for row in ordered.filter(bound)[:chunk]]
        yield from batch
        if len(batch) < chunk:
            return
        bound = _older_than(source, batch[-1].cursor)


def entries(filters: Filters, *, before: Cursor | None = None, chunk: int = 100) -> Iterator[Entry]:
    """Every matching entry, newest first, lazily: the first pull queries each table once."""
    streams = [
        _stream(source, rows, before, chunk)
        for source in sources()
        if (rows := source.matching(filters)) is not None
    ]
    return heapq.merge(*streams, key=lambda entry: (entry.at, entry.source, entry.id), reverse=True)


def page(filters: Filters, *, before: Cursor | None = None, size: int = 50) -> tuple[list[Entry], Cursor | None]:
    """A page of entries, named and attributed, and the cursor of the next page (None at the end)."""
    found = list(islice(entries(filters, before=before, chunk=size + 1), size + 1))
    shown = found[:size]
    attribute(shown)
    return shown, (shown[-1].cursor if len(found) > size else None)


def batches(filters: Filters, *, limit: int, size: int = 500) -> Iterator[list[Entry]]:
    """Up to `limit` + 1 entries (the extra one tells the caller there were more), named and
    attributed, `size` at a time: for exports, which must not hold them all."""
    stream = islice(entries(filters, chunk=size), limit + 1)
    while batch := list(islice(stream, size)):
        attribute(batch)
        yield batch


class _QueryRefused(Exception):
    pass


def _refuse(*args: Any) -> None:
    raise _QueryRefused


def attribute(page: Iterable[Entry]) -> None:
    """Fill in users, API keys (one query each) and the objects' names (none)."""
    page = list(page)
    users = get_user_model()._default_manager.only("username").in_bulk({e.user_id for e in page} - {None})
    keys = ApiKey.objects.only("name", "prefix").in_bulk({e.api_key_id for e in page} - {None})
    # A __str__ that reads a row not joined above would cost a query per entry: it is refused,
    # and the entry is named by its type and id instead.
    with connection.execute_wrapper(_refuse):
        for entry in page:
            entry.user = users.get(entry.user_id)
            entry.api_key = keys.get(entry.api_key_id)
            if entry.source != LOG:
                entry.object = _name(entry)


def _name(entry: Entry) -> str:
    row = entry.row
    instance = row.history_object
    instance._state.fields_cache.update(
        {name: value for name, value in row._state.fields_cache.items() if not name.startswith("history_")}
    )
    try:
        return str(instance)
    except Exception:  # noqa: BLE001 - a refused query, or a related row deleted since: still show the entry
        return f"{entry.record_label} #{entry.object_id}"
