"""Celery task of the daily backup: a thin wrapper around helpdesk.backups."""

from __future__ import annotations

from celery import shared_task

from . import backups


@shared_task(name="helpdesk.backup_database", ignore_result=True)
def backup_database_task() -> str:
    """Back up the database and keep the newest BACKUP_KEEP backups.

    Not retried and not acknowledged late: a failure raises, so the worker logs it and Celery
    records it for a person, and tomorrow's run makes a fresh backup anyway.
    """
    return str(backups.make_daily_backup().path)
