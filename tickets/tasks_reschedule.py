"""Tasks that move running SLA clocks after a calendar or policy edit: a batch a run, then the next."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from helpdesk.calendars import schedule_from_data
from helpdesk.tasks import IDEMPOTENT

from . import sla_reschedule


@shared_task(name="tickets.reschedule_calendar_clocks", **IDEMPOTENT)
def reschedule_calendar_clocks_task(calendar_id: int, before: dict, changed_at: str, after_pk: int = 0) -> int:
    """One batch of the clocks on an edited calendar, then the next batch queued; a repeat moves nothing twice."""
    last = sla_reschedule.reschedule_calendar_clocks(
        calendar_id=calendar_id, before=schedule_from_data(before), changed_at=datetime.fromisoformat(changed_at),
        after_pk=after_pk,
    )
    if last is not None:
        reschedule_calendar_clocks_task.delay(calendar_id, before, changed_at, last)
    return last or 0


@shared_task(name="tickets.retarget_sla_clocks", **IDEMPOTENT)
def retarget_clocks_task(changed_at: str, after_pk: int = 0) -> int:
    """One batch of running clocks onto their policy's current targets, then the next batch queued."""
    last = sla_reschedule.retarget_clocks(changed_at=datetime.fromisoformat(changed_at), after_pk=after_pk)
    if last is not None:
        retarget_clocks_task.delay(changed_at, last)
    return last or 0
