"""Celery tasks of the organisation app: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task

from . import webhooks


@shared_task(
    bind=True,
    name="helpdesk.deliver_webhook",
    autoretry_for=(webhooks.DeliveryFailed,),
    retry_backoff=5,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=8,
    ignore_result=True,
    acks_late=True,
)
def deliver_webhook_task(self, delivery_id: int) -> None:
    """Post one webhook delivery; retried with exponential backoff for about a day."""
    webhooks.deliver(delivery_id=delivery_id, final_attempt=self.request.retries >= self.max_retries)
