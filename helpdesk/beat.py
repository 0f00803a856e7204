"""Beat's scheduler: each periodic task is sent once per period, however many beats run.

Celery beat has no leader election, so two beats (a restart elsewhere before the old one died,
two replicas by mistake) send every entry twice. Before sending an entry this scheduler claims
the entry's current period in the database: one upsert on a row per entry (kept in `Heartbeat`
as "beat:<entry>", the period's start), which only the first beat of the period moves forward.
The other beat skips the send. The period is the entry's interval (a 1-second sweep: seconds
counted from the epoch in steps of 1), or the minute for a crontab entry, which fires at most
once a minute. One beat alone is never skipped: its sends of an entry are at least a period
apart, so they fall in different periods.

When the database cannot be reached the entry is sent anyway: the tasks are idempotent (they
survive two sends, tests/faults/test_two_beats.py), and they need the database themselves.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import crontab, schedule
from django.db import DatabaseError, close_old_connections, connection

logger = logging.getLogger(__name__)
PREFIX = "beat:"


def period_seconds(entry_schedule: object) -> float:
    """The period an entry is sent once in; 0 when it has none we know (sent unguarded)."""
    if isinstance(entry_schedule, crontab):
        return 60.0
    if isinstance(entry_schedule, schedule):
        return entry_schedule.run_every.total_seconds()
    return 0.0


def period_start(at: datetime, seconds: float) -> datetime:
    """The start of the period `at` falls in: epoch seconds rounded down to a multiple of `seconds`."""
    return datetime.fromtimestamp(math.floor(at.timestamp() / seconds) * seconds, tz=UTC)


def claim_period(*, name: str, seconds: float, at: datetime) -> bool:
    """True when this beat is the first to send `name` in the period `at` falls in.

    One statement, atomic between beats: the row moves forward only from an earlier period.
    """
    from .models import Heartbeat

    table = connection.ops.quote_name(Heartbeat._meta.db_table)
    start = Heartbeat._meta.get_field("at").get_db_prep_save(period_start(at, seconds), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, at) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at "
            f"WHERE {table}.at < EXCLUDED.at RETURNING id",
            [PREFIX + name, start],
        )
        return cursor.fetchone() is not None


class OncePerPeriodScheduler(PersistentScheduler):
    """`celery beat`'s default scheduler (CELERY_BEAT_SCHEDULER), sending each entry once per period."""

    def apply_async(self, entry: ScheduleEntry, producer=None, advance: bool = True, **kwargs):
        seconds = period_seconds(entry.schedule)
        if seconds > 0:
            close_old_connections()  # a connection broken by a database restart is replaced
            try:
                first = claim_period(name=entry.name, seconds=seconds, at=self.app.now())
            except DatabaseError:
                logger.warning("Beat could not claim %s's period; sending it anyway", entry.name, exc_info=True)
                first = True
            if not first:
                logger.info("Beat: %s was sent for this period by another beat; not sent again", entry.name)
                return None
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
