"""Celery tasks of the organisation app: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import access_review, health, services, task_guard, webhooks

# Options of a task that may run twice with no second effect: acknowledged after it ran (a
# worker killed half-way has it delivered again) and retried when the database hiccups.
IDEMPOTENT = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
    "ignore_result": True,
    "acks_late": True,
}


@shared_task(
    bind=True,
    name="helpdesk.deliver_webhook",
    autoretry_for=(webhooks.DeliveryFailed,),
    retry_backoff=webhooks.RETRY_BASE_SECONDS,
    retry_backoff_max=webhooks.RETRY_MAX_SECONDS,
    retry_jitter=True,
    max_retries=webhooks.MAX_ATTEMPTS - 1,
    ignore_result=True,
    acks_late=True,
)
def deliver_webhook_task(self, delivery_id: int) -> None:
    """Post one webhook delivery; retried with exponential backoff (waits of up to 5 s, 10 s, …
    then at most an hour, each cut at random by the jitter) for up to about a day: long enough to
    ride out a receiver's outage of an afternoon."""
    retries = self.request.retries
    try:
        webhooks.deliver(delivery_id=delivery_id, final_attempt=retries >= self.max_retries, retries=retries)
    except webhooks.DeliveryBusy as busy:
        raise self.retry(countdown=busy.args[0]) from None


@shared_task(name="helpdesk.requeue_webhook_deliveries", ignore_result=True)
def requeue_webhook_deliveries_task() -> int:
    """The safety net for deliveries whose task never reached the broker."""
    return webhooks.requeue_stalled_deliveries()


@shared_task(name="helpdesk.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys_task() -> int:
    """Forget Idempotency-Key results older than their 24 hours."""
    return services.purge_idempotency_keys()


@shared_task(name="helpdesk.beat_heartbeat", ignore_result=True)
def beat_heartbeat_task() -> None:
    """Beat runs this every minute: its row's age in GET /healthz shows beat and a worker alive.

    Not retried: a missed beat is replaced by the next one a minute later.
    """
    health.record_heartbeat()


@shared_task(name="helpdesk.forget_stale_task_deliveries", ignore_result=True)
def forget_stale_task_deliveries_task() -> int:
    """Daily: drop the task guard's rows of tasks that died and never came back."""
    return task_guard.forget_stale()


@shared_task(name="helpdesk.remind_access_review", ignore_result=True)
def remind_access_review_task() -> int:
    """Monthly: tell administrators what the permission review flags (each once a month)."""
    return access_review.remind_access_review()


from . import tasks_backup  # noqa: E402, F401  the daily backup; Celery autodiscovers only this module
