"""Elapsed seconds between two timestamps, as SQL a stored generated column accepts.

A generated column may use only built-in, deterministic functions: PostgreSQL subtracts the
timestamps and takes the interval's epoch; SQLite, whose dates are text, subtracts Julian days
(millisecond precision, which reports rounding to whole seconds never see).
"""

from __future__ import annotations

from typing import Any

from django.db.models import FloatField, Func


class SecondsBetween(Func):
    """`later - earlier` in seconds; NULL when either is."""

    arity = 2
    arg_joiner = " - "
    template = "EXTRACT(EPOCH FROM (%(expressions)s))::double precision"
    output_field = FloatField()

    def __init__(self, later: Any, earlier: Any, **extra: Any) -> None:
        super().__init__(later, earlier, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="ROUND((julianday(%(expressions)s)) * 86400.0, 3)",
            arg_joiner=") - julianday(", **extra,
        )
