"""Celery tasks for tickets: thin wrappers that call services."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from helpdesk import privacy
from helpdesk.tasks import IDEMPOTENT

from . import import_jobs, routing, services, sla


@shared_task(
    name="tickets.close_solved_tickets",
    **IDEMPOTENT,
)
def close_solved_tickets_task() -> int:
    """Close tickets left solved long enough; idempotent, so beat may run it as often as it likes."""
    return services.close_solved_tickets()


@shared_task(name="tickets.sweep_sla_clocks", ignore_result=True)
def sweep_sla_clocks_task() -> int:
    """The deadline runner (beat, every second): hand every clock with a stage due to a worker,
    and any whose earlier check was lost (its claim ran out). With ETA tasks on, also the stages
    due before the next sweep, at their exact time."""
    now = timezone.now()
    due = sla.claim_due_clocks(now=now, ahead=timedelta(seconds=settings.SLA_PRECISE_HORIZON_SECONDS))
    sla.queue_checks(due, now=now)
    return len(due)


@shared_task(
    name="tickets.check_sla_clocks",
    **IDEMPOTENT,
)
def check_sla_clocks_task(clock_ids: list[int]) -> None:
    """Warn, breach and escalate what is due; each clock's stages happen once however often this runs."""
    for clock_id in clock_ids:
        sla.check_clock(clock_id=clock_id)


@shared_task(
    name="tickets.check_sla_clock",
    **IDEMPOTENT,
)
def check_sla_clock_task(clock_id: int) -> None:
    """One clock at its exact deadline (an ETA task); the sweep covers it if this is lost."""
    sla.check_clock(clock_id=clock_id)


@shared_task(name="tickets.assign_waiting_tickets", **IDEMPOTENT)
def assign_waiting_tickets_task() -> int:
    """The safety net under routing's own triggers (an agent online, a seat freed, a capacity raised)."""
    return routing.assign_all_waiting()


@shared_task(name="tickets.anonymise_expired_conversations", **IDEMPOTENT)
def anonymise_expired_conversations_task(batch_size: int = 200, max_batches: int = 50) -> int:
    """Retention: take the customer out of conversations closed longer ago than
    RETENTION_CONVERSATION_DAYS. Bounded work per run; a full last batch means more may wait,
    so the task queues itself again (each run is short, a killed one redoes one batch)."""
    done = privacy.anonymise_expired_conversations(batch_size=batch_size, max_batches=max_batches)
    if done >= batch_size * max_batches:
        anonymise_expired_conversations_task.apply_async(kwargs={"batch_size": batch_size, "max_batches": max_batches})
    return done


# Tasks kept in their own modules; Celery's autodiscovery loads only this one.
from . import tasks_reports, tasks_reschedule  # noqa: E402, F401


@shared_task(name="tickets.run_import_job", ignore_result=True)
def run_import_job_task(job_id: int) -> str | None:
    """Import an uploaded history file; a second delivery finds the job claimed and does nothing.

    Not acknowledged late: a worker dying mid-import leaves the job in its phase, and the same
    file uploaded again finishes it (re-imports never duplicate)."""
    return import_jobs.run_import_job(job_id=job_id)
