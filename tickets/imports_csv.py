"""Ticket history as CSV, the way spreadsheets export it: one row per message (or status event).

The header names the columns (any order; only external_id is required):

    external_id, subject, channel, category, priority, team, assignee,
    customer_external_id, customer_name, customer_phone, customer_email, customer_tier,
    message_external_id, author, agent, body, sent_at, internal,
    status, status_at, csat_stars, csat_comment, csat_at

Rows of one ticket come together (streamed: one ticket in memory at a time). Ticket, customer
and rating cells may be repeated on every row or given once; a row with a body is a message, a
row with a status is an event. Each ticket becomes the same object as a JSON line, so both
formats share validation and writing (tickets.imports), and errors name the row and column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from helpdesk.textfiles import decoded_lines

from .imports import LineError, Record

TICKET_COLUMNS = ("external_id", "subject", "channel", "category", "priority", "team", "assignee")
CUSTOMER_COLUMNS = {f"customer_{name}": name for name in ("external_id", "name", "phone", "email", "tier")}
MESSAGE_COLUMNS = {
    "message_external_id": "external_id", "author": "author", "agent": "agent", "body": "body", "sent_at": "sent_at",
    "internal": "internal",
}
EVENT_COLUMNS = {"status": "status", "status_at": "at"}
CSAT_COLUMNS = {"csat_stars": "stars", "csat_comment": "comment", "csat_at": "at"}
COLUMNS = (*TICKET_COLUMNS, *CUSTOMER_COLUMNS, *MESSAGE_COLUMNS, *EVENT_COLUMNS, *CSAT_COLUMNS)
_SINGLE = (*TICKET_COLUMNS, *CUSTOMER_COLUMNS, *CSAT_COLUMNS)  # once per ticket


@dataclass
class _Ticket:
    line: int
    single: dict[str, tuple[str, int]] = field(default_factory=dict)  # column -> (value, line)
    messages: list[tuple[dict[str, str], int]] = field(default_factory=list)
    events: list[tuple[dict[str, str], int]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    def add(self, row: dict[str, str], line: int) -> None:
        for column in _SINGLE:
            value = row.get(column, "")
            if not value:
                continue
            if column not in self.single:
                self.single[column] = (value, line)
            elif self.single[column][0] != value:
                self.errors.append((line, column, _("differs from line %(line)d (“%(value)s”)") % {
                    "line": self.single[column][1], "value": self.single[column][0],
                }))
        message = {key: row[column] for column, key in MESSAGE_COLUMNS.items() if row.get(column)}
        if message:
            self.messages.append((message, line))
        event = {key: row[column] for column, key in EVENT_COLUMNS.items() if row.get(column)}
        if event:
            self.events.append((event, line))

    def record(self) -> Record:
        data: dict[str, Any] = {column: self.single[column][0] for column in TICKET_COLUMNS if column in self.single}
        data["customer"] = {key: self.single[c][0] for c, key in CUSTOMER_COLUMNS.items() if c in self.single}
        data["messages"] = [message for message, _line in self.messages]
        data["events"] = [event for event, _line in self.events]
        csat = {key: self.single[c][0] for c, key in CSAT_COLUMNS.items() if c in self.single}
        if csat:
            data["csat"] = csat
        return Record(self.line, None if self.errors else data, self.errors, self.place)

    def place(self, path: str) -> tuple[int, str]:
        """A validation error's path (messages[1].sent_at) as the row and column it came from."""
        head, _dot, sub = path.partition(".")
        name, _bracket, index = head.partition("[")
        if name in ("messages", "events") and index:
            rows, columns = (self.messages, MESSAGE_COLUMNS) if name == "messages" else (self.events, EVENT_COLUMNS)
            column = next((c for c, key in columns.items() if key == sub), next(iter(columns)))
            return rows[int(index.rstrip("]"))][1], column
        if name == "messages":
            return self.line, "body"
        if name == "customer":
            column = f"customer_{sub}" if f"customer_{sub}" in CUSTOMER_COLUMNS else "customer_external_id"
            return self.single.get(column, ("", self.line))[1], column
        if name == "csat":
            column = next((c for c, key in CSAT_COLUMNS.items() if key == sub), "csat_stars")
            return self.single.get(column, ("", self.line))[1], column
        return self.single.get(name, ("", self.line))[1], name


def csv_records(lines: Iterable[bytes | str], encoding: str) -> Iterator[Record]:
    """One record per ticket; a bad header, an undecodable line or a misplaced row is a record of errors."""
    consumed: list[int] = []  # the physical lines the reader took for the current row
    undecodable: list[LineError] = []

    def texts() -> Iterator[str]:
        for number, text, problem in decoded_lines(lines, encoding):
            if text is None:
                undecodable.append((number, "", problem))
                continue
            consumed.append(number)
            yield text

    reader = csv.reader(texts(), strict=False)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield Record(1, None, [(1, "", str(exc))])
        return
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or "external_id" not in header or len(set(header)) != len(header) or undecodable:
        reason = _("the header needs an external_id column and only these, each once: %(known)s") % {
            "known": ", ".join(COLUMNS)
        }
        yield Record(1, None, [*undecodable, *((1, name, reason) for name in unknown or [""])])
        return
    started: dict[str, int] = {}  # each ticket's first line: its rows must come together
    current: _Ticket | None = None
    while True:
        consumed.clear()
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield Record(consumed[0] if consumed else 0, None, [(consumed[0] if consumed else 0, "", str(exc))])
            continue
        if undecodable:  # the row it belonged to is incomplete: the ticket fails with it
            if current is not None:
                current.errors.extend(undecodable)
            else:
                yield Record(undecodable[0][0], None, list(undecodable))
            undecodable.clear()
        line = consumed[0] if consumed else 0
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            yield Record(line, None, [(line, "", _("%(cells)d cells, but the header has %(columns)d columns") % {
                "cells": len(cells), "columns": len(header),
            })])
            continue
        row = {name: (value if name == "body" else value.strip()) for name, value in zip(header, cells, strict=False)}
        external_id = row.get("external_id", "")
        if not external_id:
            yield Record(line, None, [(line, "external_id", _("This field is required."))])
            continue
        if current is None or external_id != current.single["external_id"][0]:
            if external_id in started:
                yield Record(line, None, [(line, "external_id", _(
                    "the rows of ticket “%(id)s” must come together (it began on line %(line)d)"
                ) % {"id": external_id, "line": started[external_id]})])
                continue
            if current is not None:
                yield current.record()
            current = _Ticket(line)
            started[external_id] = line
        current.add(row, line)
    if undecodable:
        if current is not None:
            current.errors.extend(undecodable)
        else:
            yield Record(undecodable[0][0], None, list(undecodable))
    if current is not None:
        yield current.record()
