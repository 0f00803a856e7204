"""Celery tasks for QA: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task

from helpdesk.tasks import IDEMPOTENT

from . import services


@shared_task(
    name="qa.draw_daily_samples",
    **IDEMPOTENT,
)
def draw_daily_samples_task() -> int:
    """Yesterday's sample for every scope; a second run (or a second beat) draws nothing."""
    return services.draw_all_scopes()
