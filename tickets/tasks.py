"""Celery tasks for tickets: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(
    name="tickets.close_solved_tickets",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    ignore_result=True,
    acks_late=True,
)
def close_solved_tickets_task() -> int:
    """Close tickets left solved long enough; idempotent, so beat may run it as often as it likes."""
    return services.close_solved_tickets()
