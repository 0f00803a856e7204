"""Celery tasks for the knowledge base: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task

from helpdesk.tasks import IDEMPOTENT

from . import services


@shared_task(name="knowledge.remind_overdue_reviews", **IDEMPOTENT)
def remind_overdue_reviews_task() -> int:
    """Tell owners about articles past their review date; a second run the same day tells nobody."""
    return services.remind_overdue_reviews()
