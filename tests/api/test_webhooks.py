"""Webhooks: signed, delivered by Celery after commit, retried, logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from config.celery import app
from helpdesk import webhooks
from helpdesk.models import WebhookDelivery, WebhookEndpoint
from tickets import services

from ..factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint that records what it gets and answers with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_a_change_is_posted_signed_after_commit(receiver, eager, django_capture_on_commit_callbacks):
    WebhookEndpoint.objects.create(name="shop", url=receiver.url, secret="s3cret", events=["ticket.status_changed"])
    ticket = TicketFactory(status="open")
    with django_capture_on_commit_callbacks(execute=True):
        services.change_status(ticket=ticket, status="solved", reason="done")
    ((headers, body),) = receiver.requests
    payload = json.loads(body)
    assert payload["event"] == "ticket.status_changed"
    assert payload["data"]["reference"] == ticket.reference and payload["data"]["previous_status"] == "open"
    expected = hmac.new(b"s3cret", headers["X-Helpdesk-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Helpdesk-Signature"] == f"sha256={expected}"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)


def test_only_subscribed_events_are_sent_and_a_rollback_sends_nothing(receiver, eager, django_capture_on_commit_callbacks):
    WebhookEndpoint.objects.create(name="shop", url=receiver.url, secret="x", events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = TicketFactory(status="open")
        services.change_status(ticket=ticket, status="pending")
    assert receiver.requests == []
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        from django.db import transaction

        with transaction.atomic():
            services.post_message(ticket=ticket, author_kind="customer", body="x")
            raise RuntimeError("rolled back")
    assert receiver.requests == [] and WebhookDelivery.objects.count() == 0


def test_a_failing_endpoint_is_retried_then_marked_failed(eager, django_capture_on_commit_callbacks):
    failing = Receiver(status=500)
    try:
        WebhookEndpoint.objects.create(name="down", url=failing.url, secret="x", events=["ticket.created"])
        with django_capture_on_commit_callbacks(execute=True):
            services.open_ticket(customer=CustomerFactory(), subject="s", channel="email", body="b")
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "failed" and delivery.attempts == webhooks.MAX_ATTEMPTS == 31
        assert delivery.response_code == 500 and len(failing.requests) == 31
    finally:
        failing.close()


def test_the_request_only_queues_the_delivery(api, monkeypatch, django_capture_on_commit_callbacks):
    from helpdesk import tasks

    queued = []
    monkeypatch.setattr(tasks.deliver_webhook_task, "delay", lambda pk: queued.append(pk))
    WebhookEndpoint.objects.create(name="slow", url="http://127.0.0.1:9/never", secret="x", events=["ticket.created"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/tickets/",
            {"subject": "s", "channel": "email", "customer": {"name": "n"}, "message": {"body": "b"}},
            format="json",
        )
    assert response.status_code == 201
    assert queued == [WebhookDelivery.objects.get().pk]
    assert WebhookDelivery.objects.get().status == "pending"


def test_a_delivery_whose_task_was_lost_is_queued_again(monkeypatch):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from helpdesk import tasks, webhooks

    WebhookEndpoint.objects.create(name="shop", url="http://127.0.0.1:9/x", secret="x", events=["ticket.created"])
    webhooks.forget_endpoints()
    services.open_ticket(customer=CustomerFactory(), subject="s", channel="email", body="b")
    delivery = WebhookDelivery.objects.get()  # recorded with the ticket, before any task ran
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook_task, "delay", lambda pk: queued.append(pk))
    assert webhooks.requeue_stalled_deliveries() == 0  # too fresh: its own task may still come
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert webhooks.requeue_stalled_deliveries() == 1
    assert queued == [delivery.pk]


def _pending_delivery(url: str) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(name="shop", url=url, secret="x", events=["ticket.created"])
    return WebhookDelivery.objects.create(endpoint=endpoint, event="ticket.created", payload={"n": 1})


def test_a_delivery_being_sent_is_not_sent_again_at_the_same_time(receiver):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    delivery = _pending_delivery(receiver.url)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(sending_until=timezone.now() + timedelta(seconds=25))
    with pytest.raises(webhooks.DeliveryBusy):
        webhooks.deliver(delivery_id=delivery.pk, final_attempt=False)  # a second task, while the first sends
    assert receiver.requests == []
    with time_machine.travel(timezone.now() + timedelta(seconds=26)):  # the first one's worker died
        webhooks.deliver(delivery_id=delivery.pk, final_attempt=False)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1 and (delivery.status, delivery.attempts, delivery.sending_until) == ("delivered", 1, None)
    webhooks.deliver(delivery_id=delivery.pk, final_attempt=False)
    assert len(receiver.requests) == 1


def test_a_retry_that_could_not_be_queued_is_queued_again(monkeypatch):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from helpdesk import tasks

    failing = Receiver(status=503)
    try:
        delivery = _pending_delivery(failing.url)
        start = timezone.now()
        with time_machine.travel(start, tick=False), pytest.raises(webhooks.DeliveryFailed):
            webhooks.deliver(delivery_id=delivery.pk, final_attempt=False, retries=3)  # its retry is then lost
    finally:
        failing.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == start + timedelta(seconds=40)  # 5 s × 2³: the latest the retry comes
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook_task, "delay", lambda pk: queued.append(pk))
    with time_machine.travel(start + timedelta(minutes=5)):
        assert webhooks.requeue_stalled_deliveries() == 0  # the retry may still come
    with time_machine.travel(start + timedelta(minutes=6)):
        assert webhooks.requeue_stalled_deliveries() == 1
    assert queued == [delivery.pk]


def test_attempts_stay_bounded_however_many_tasks_made_them():
    failing = Receiver(status=500)
    try:
        delivery = _pending_delivery(failing.url)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=webhooks.MAX_ATTEMPTS - 1)
        webhooks.deliver(delivery_id=delivery.pk, final_attempt=False)  # a re-queued task's first try
    finally:
        failing.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS)


def test_a_task_that_finds_the_delivery_claimed_looks_again_when_the_claim_ends(receiver):
    from datetime import timedelta

    from django.utils import timezone

    delivery = _pending_delivery(receiver.url)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(sending_until=timezone.now() + timedelta(seconds=20))
    with pytest.raises(webhooks.DeliveryBusy) as busy:
        webhooks.deliver(delivery_id=delivery.pk, final_attempt=False)
    assert 19 < busy.value.args[0] <= 21  # the task retries then, rather than dropping the message
    assert receiver.requests == []
