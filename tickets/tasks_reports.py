"""Celery task of the operations reports by email: a thin wrapper around tickets.report_mail."""

from __future__ import annotations

from celery import shared_task

from helpdesk.tasks import IDEMPOTENT

from . import report_mail


@shared_task(name="tickets.send_report_emails", **IDEMPOTENT)
def send_report_emails_task() -> int:
    """Send the weekly and monthly reports that are due; a day missed is caught up the next
    day, and a period claimed once is never sent again however often this runs."""
    return report_mail.send_due_reports()
