"""Webhooks: events become deliveries after commit; a Celery task posts each, signed, with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMESTAMP_HEADER = "X-Helpdesk-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex: what receivers recompute to verify."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def emit(event: str, data: dict[str, Any]) -> None:
    """Record `event` for every endpoint that wants it, in the caller's transaction, and queue
    the deliveries once it commits.

    A rolled-back change sends nothing; a slow endpoint never slows the request; a delivery
    whose task was lost (broker down at commit) is queued again by requeue_stalled_deliveries.
    """
    endpoint_ids = subscribed_endpoint_ids(event)
    if not endpoint_ids:
        return
    payload = json.loads(json.dumps({"event": event, "occurred_at": timezone.now(), "data": data}, cls=DjangoJSONEncoder))
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint_id=pk, event=event, payload=payload) for pk in endpoint_ids
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _send(ids), robust=True)


def _send(delivery_ids: list[int]) -> None:
    from .tasks import deliver_webhook_task

    for pk in delivery_ids:
        deliver_webhook_task.delay(pk)


def requeue_stalled_deliveries(*, older_than: timedelta = timedelta(minutes=5), limit: int = 1000) -> int:
    """Queue again pending deliveries whose next attempt is overdue by `older_than`: their task
    was lost (never queued at commit, or a retry that could not be queued). Returns how many."""
    cutoff = timezone.now() - older_than
    ids = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lt=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    _send(ids)
    return len(ids)


ENDPOINTS_CACHE_KEY = "helpdesk:webhook-endpoints"


def subscribed_endpoint_ids(event: str) -> list[int]:
    """Active endpoints that want `event`; cached briefly, since nearly every write emits one."""
    endpoints = cache.get(ENDPOINTS_CACHE_KEY)
    if endpoints is None:
        endpoints = list(WebhookEndpoint.objects.filter(is_active=True).values_list("id", "events"))
        cache.set(ENDPOINTS_CACHE_KEY, endpoints, 30)
    return [pk for pk, events in endpoints if event in events]


def forget_endpoints() -> None:
    """Call after changing endpoints, so the next event sees the change at once."""
    cache.delete(ENDPOINTS_CACHE_KEY)


class DeliveryFailed(Exception):
    """The endpoint did not take the event; the task retries with backoff."""


class DeliveryBusy(Exception):
    """Another worker holds the delivery; the task looks again after `args[0]` seconds."""


# Attempts in all, however many tasks (a retry chain, re-queues) made them.
MAX_ATTEMPTS = 31
# Retry waits: 5 s, 10 s, 20 s, … at most an hour (the task's retry_backoff and its maximum).
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 3600


def retry_wait_limit(retries: int) -> timedelta:
    """The longest a retry after `retries` earlier retries waits (the jitter only shortens it)."""
    return timedelta(seconds=min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(retries, 20)))


def deliver(*, delivery_id: int, final_attempt: bool, retries: int = 0) -> None:
    """POST one pending delivery, unless another worker is sending it right now; a delivered
    or failed one is not sent again. Failures raise DeliveryFailed."""
    now = timezone.now()
    # Connect and read each get the timeout; the lease outlasts both, so it ends only when the
    # worker that took it died.
    lease = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 5)
    pending = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
    claimed = pending.filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now)).update(sending_until=lease)
    if not claimed:
        busy_until = pending.values_list("sending_until", flat=True).first()
        if busy_until is not None:  # being sent, or its worker died mid-POST: look again when the lease ends
            raise DeliveryBusy((busy_until - now).total_seconds() + 1)
        return  # delivered, failed or gone
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    final_attempt = final_attempt or delivery.attempts + 1 >= MAX_ATTEMPTS
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "helpdesk-webhooks/1",
        "X-Helpdesk-Event": delivery.event,
        "X-Helpdesk-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: "sha256=" + sign(delivery.endpoint.secret, timestamp, body),
    }
    code, error, reason = None, "", ""
    try:
        response = requests.post(delivery.endpoint.url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        code = response.status_code
        if not 200 <= code < 300:
            # Endpoints often answer with the body they got, customer data and all: the answer
            # is kept on the delivery for administrators, the log and the retry get the status.
            error, reason = f"HTTP {code}: {response.text[:500]}", f"HTTP {code}"
    except requests.RequestException as exc:
        error = reason = f"{type(exc).__name__}: {exc}"[:1000]
    now = timezone.now()
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED, attempts=delivery.attempts + 1, response_code=code,
            error="", delivered_at=now, sending_until=None,
        )
        return
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED if final_attempt else WebhookDelivery.Status.PENDING,
        attempts=delivery.attempts + 1, response_code=code, error=error, sending_until=None,
        next_attempt_at=now + retry_wait_limit(retries),
    )
    logger.warning("Webhook delivery %s to %s failed: %s", delivery.pk, delivery.endpoint.url, reason)
    if not final_attempt:
        raise DeliveryFailed(reason)
