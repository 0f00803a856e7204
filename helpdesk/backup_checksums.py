"""Row counts and checksums per table, the evidence that a restore holds what was backed up.

A table's checksum is an md5 over its rows in primary-key order (every column when there is
no key), read in batches so that memory stays bounded however large the table grows. It is
comparable between two databases of the same engine, which is what backup and restore need.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from django.utils.translation import gettext as _

Checksums = dict[str, dict[str, Any]]  # {table: {"rows": n, "checksum": md5 hex}}

# Rows hashed per step. On PostgreSQL the checksum depends on it, so a manifest records the
# value it was made with and a restore uses that one.
BATCH_ROWS = 10_000
# Session settings that fix how PostgreSQL prints a row, so the same row gives the same text
# (and checksum) on any server, whatever the connection's defaults.
PG_ROW_TEXT_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
)


def compare(expected: Checksums, found: Checksums) -> list[str]:
    """One line per table whose rows differ from the expected ones (missing tables included)."""
    problems = []
    for table, want in sorted(expected.items()):
        got = found.get(table)
        if got is None:
            problems.append(_("%(table)s: missing") % {"table": table})
        elif got["rows"] != want["rows"]:
            problems.append(
                _("%(table)s: %(found)d rows, the backup had %(expected)d")
                % {"table": table, "found": got["rows"], "expected": want["rows"]}
            )
        elif got["checksum"] != want["checksum"]:
            problems.append(_("%(table)s: same row count, different content (checksum)") % {"table": table})
    return problems


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_tables(cursor: Any) -> list[tuple[str, str, list[str]]]:
    """(name in the manifest, quoted name, quoted primary-key columns) of every table with rows
    of its own (partitions, not their parents) outside PostgreSQL's own schemas."""
    cursor.execute(
        """
        SELECT n.nspname, c.relname, ARRAY(
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = c.oid AND i.indisprimary
            ORDER BY array_position(i.indkey::int2[], a.attnum)
        )
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY n.nspname, c.relname
        """
    )
    quote_name = cursor.db.ops.quote_name
    return [
        (
            table if schema == "public" else f"{schema}.{table}",
            f"{quote_name(schema)}.{quote_name(table)}",
            [quote_name(column) for column in key],
        )
        for schema, table, key in cursor.fetchall()
    ]


def postgres_checksums(cursor: Any, *, batch_rows: int = BATCH_ROWS) -> Checksums:
    """Checksums of every table, read in the cursor's transaction (REPEATABLE READ for one
    snapshot). Each row's text is hashed in SQL and each batch of rows becomes one md5 of those
    hashes, which Python chains: the server streams the rows through a window, and the client
    receives one row per batch."""
    for statement in PG_ROW_TEXT_SETTINGS:
        cursor.execute(statement)
    result = {}
    for name, quoted, key in postgres_tables(cursor):
        order = ", ".join(f"t.{column}" for column in key) or "t::text"
        cursor.execute(
            f"""
            SELECT count(*), md5(string_agg(h, '' ORDER BY n))
            FROM (SELECT md5(t::text) AS h, row_number() OVER (ORDER BY {order}) AS n FROM {quoted} AS t) AS r
            GROUP BY (n - 1) / {int(batch_rows)}
            ORDER BY min(n)
            """
        )
        digest, rows = hashlib.md5(usedforsecurity=False), 0
        for count, batch_md5 in cursor.fetchall():
            rows += count
            digest.update(batch_md5.encode())
        result[name] = {"rows": rows, "checksum": digest.hexdigest()}
    return result


# --- SQLite --------------------------------------------------------------------------------


def sqlite_tables(connection: sqlite3.Connection) -> list[tuple[str, list[str], list[str]]]:
    """(table, columns, primary-key columns) of every table. Virtual tables are left out: their
    shadow tables hold the data and are read instead."""
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
        )
    ]
    tables = []
    for name in names:
        # table_xinfo lists generated columns too; hidden = 1 marks a virtual table's own.
        info = [row for row in connection.execute(f"PRAGMA table_xinfo({sqlite_quote(name)})") if row[6] != 1]
        key = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]
        tables.append((name, [row[1] for row in info], key))
    return tables


def sqlite_checksums(connection: sqlite3.Connection) -> Checksums:
    """Checksums of every table, in one read transaction (no writer slips rows in between
    two tables). Values are read as SQL literals (`quote()`), so a connection's type
    converters (Django registers some) cannot change what is hashed."""
    result = {}
    began = not connection.in_transaction
    if began:
        connection.execute("BEGIN")
    try:
        for name, columns, key in sqlite_tables(connection):
            values = ", ".join(f"quote({sqlite_quote(column)})" for column in columns)
            order = ", ".join(sqlite_quote(column) for column in (key or columns))
            cursor = connection.execute(f"SELECT {values} FROM {sqlite_quote(name)} ORDER BY {order}")
            digest, rows = hashlib.md5(usedforsecurity=False), 0
            while batch := cursor.fetchmany(BATCH_ROWS):
                rows += len(batch)
                for row in batch:
                    digest.update(repr(row).encode() + b"\n")
            result[name] = {"rows": rows, "checksum": digest.hexdigest()}
    finally:
        if began:
            connection.rollback()
    return result


def sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
