"""The broker down while tickets arrive: the API keeps accepting them; escalations and webhooks
catch up when it returns; nothing lost.

The broker is made to refuse connections for real: the app publishes to a Redis port nothing
listens on, whatever the configured broker is (filesystem or Redis). Requests commit for real
(`transaction=True`), so their on_commit publishing runs and fails as in production.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.db.models import F
from django.utils import timezone

from config.celery import app
from helpdesk import webhooks
from helpdesk.models import WebhookDelivery, WebhookEndpoint
from helpdesk.observability import JsonFormatter
from helpdesk.tasks import requeue_webhook_deliveries_task
from tickets import sla
from tickets.models import Escalation, Message, SlaClock, SlaPolicy, Ticket
from tickets.tasks import sweep_sla_clocks_task

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TICKETS = "/api/v1/tickets/"
NAME, PHONE, BODY = "王小明", "13912345678", "订单 8812 的退款还没到"
EVENTS = ["ticket.created", "message.created", "sla.breached", "escalation.created"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def forget_broker_connections() -> None:
    """Celery keeps a connection pool and a producer pool per app: the next publish builds them
    again for the broker configured now."""
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_refusing_connections():
    """Publishing goes to a Redis port nothing listens on (refused at once), until the block ends."""
    forget_broker_connections()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(app.conf, "broker_write_url", f"redis://127.0.0.1:{closed_port()}/0")
            yield
    finally:
        forget_broker_connections()


class Receiver:
    """A webhook endpoint on loopback that records the delivery id and event of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[int, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((int(self.headers["X-Helpdesk-Delivery"]), self.headers["X-Helpdesk-Event"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    WebhookEndpoint.objects.create(name="shop", url=endpoint.url, secret="s3cret", events=EVENTS)
    webhooks.forget_endpoints()
    yield endpoint
    endpoint.close()


@pytest.fixture
def short_first_response(db):
    """Tickets on channel "other" must be answered within 5 s: due before the next sweep, so the
    request itself queues the check at the deadline (the publish the outage makes fail)."""
    policy = SlaPolicy.objects.create(name="faults: 5 s", position=0, channels=["other"])
    policy.targets.create(metric="first_response", seconds=5)
    sla.forget_policies()
    return policy


def timed(send):
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def new_ticket(n: int) -> dict:
    return {
        "subject": f"退款 {n}", "channel": "other", "customer": {"name": NAME, "phone": PHONE, "external_id": f"c-{n}"},
        "message": {"body": BODY},
    }


def take_tickets_while_the_broker_is_down(api, count: int) -> tuple[list[str], list[float]]:
    references, durations = [], []
    assert api.get(TICKETS).status_code == 200  # the process warmed up: what is timed below is the outage
    with broker_refusing_connections():
        for n in range(count):
            response, took = timed(lambda n=n: api.post(TICKETS, new_ticket(n), format="json"))
            assert response.status_code == 201, response.content
            references.append(response.json()["reference"])
            durations.append(took)
        for reference in references:
            response, took = timed(
                lambda reference=reference: api.post(
                    f"{TICKETS}{reference}/messages/", {"author": "customer", "body": "还在吗？"}, format="json"
                )
            )
            assert response.status_code == 201, response.content
            durations.append(took)
    return references, durations


def assert_answered_quickly(durations: list[float]) -> None:
    """Each on_commit publish fails in about 0.6 s (redis-py's connection retries): a new ticket
    pays three (two webhook events, the SLA check at its 5-second deadline), a message one. The
    very first publish of a process that never reached the broker also waits out kombu's
    connection retries (2 s, then 4 s more, past broker_connection_timeout), once."""
    first, *rest = durations
    assert first < 12, durations
    assert max(rest) < 4, durations


def assert_each_delivered_once(receiver: Receiver) -> None:
    received = Counter(pk for pk, _event in receiver.received)
    assert received == dict.fromkeys(WebhookDelivery.objects.values_list("pk", flat=True), 1)  # each once, none missing
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


def assert_each_escalated_once(references: list[str]) -> None:
    for reference in references:
        ticket = Ticket.objects.get(pk=Ticket.pk_from_reference(reference))
        assert list(ticket.escalations.values_list("level", flat=True)) == [1]
        assert ticket.history.filter(history_change_reason="sla_escalation:1").count() == 1
        assert ticket.priority == Ticket.Priority.HIGH  # one step up from normal, once


@transactional
def test_tickets_are_taken_while_the_broker_refuses_connections_and_caught_up_once_it_is_back(
    api, receiver, short_first_response, caplog, auto_replies_off
):
    with caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        references, durations = take_tickets_while_the_broker_is_down(api, count=3)

    # Every request answered within seconds, and everything it must lead to is in the database.
    assert_answered_quickly(durations)
    assert Ticket.objects.count() == 3 and Message.objects.count() == 6
    assert SlaClock.objects.filter(metric="first_response", next_check_at__isnull=False).count() == 3
    assert Counter(WebhookDelivery.objects.values_list("event", "status", "attempts")) == {
        ("ticket.created", "pending", 0): 3, ("message.created", "pending", 0): 6,
    }
    assert receiver.received == []

    # Each publish that failed is one ERROR line naming the callback and the broker's error,
    # with no customer data in it or in its traceback.
    failures = [r for r in caplog.records if r.name == "django.db.backends.base"]
    assert failures and all(r.levelno == logging.ERROR and "in on_commit()" in r.getMessage() for r in failures)
    assert any("emit.<locals>" in r.getMessage() for r in failures)  # the webhooks
    # Deadlines publish nothing from the request (the beat-driven runner hands them out), so a
    # broker outage costs a deadline nothing here.
    assert not any("_precise.<locals>" in r.getMessage() for r in failures)
    logged = "\n".join(JsonFormatter().format(record) for record in failures)
    assert "Connection refused" in logged or "connecting" in logged
    assert NAME not in logged and PHONE not in logged and BODY not in logged

    # The broker is back. Beat's next runs (sweep every 10 s, re-queue every 5 minutes) catch up.
    app.conf.task_always_eager = True
    try:
        with time_machine.travel(timezone.now() + timedelta(minutes=6)):
            sweep_sla_clocks_task.delay()
            requeue_webhook_deliveries_task.delay()
        assert_each_escalated_once(references)
        assert Counter(event for _pk, event in receiver.received) == {
            "ticket.created": 3, "message.created": 6, "sla.breached": 3, "escalation.created": 3,
        }
        assert_each_delivered_once(receiver)

        # Later runs find nothing left to do.
        with time_machine.travel(timezone.now() + timedelta(minutes=12)):
            assert sweep_sla_clocks_task.delay().get() == 0
            assert requeue_webhook_deliveries_task.delay().get() == 0
        assert_each_escalated_once(references)
        assert_each_delivered_once(receiver)
    finally:
        app.conf.task_always_eager = False


@pytest.fixture
def routed_to(monkeypatch):
    """Ticket and webhook tasks, and those they queue, go to a queue of the test's own."""
    queue = f"test-{uuid.uuid4().hex}"
    monkeypatch.setitem(app.conf, "task_routes", {"tickets.*": {"queue": queue}, "helpdesk.*": {"queue": queue}})
    monkeypatch.setattr(app.amqp, "_rtable", None)
    monkeypatch.delitem(app.amqp.__dict__, "router", raising=False)
    yield queue
    app.amqp.__dict__.pop("router", None)
    app.amqp._rtable = None


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.celery_worker
@transactional
def test_a_real_worker_on_the_returned_broker_delivers_and_escalates_everything_once(
    api, receiver, short_first_response, routed_to, auto_replies_off
):
    references, durations = take_tickets_while_the_broker_is_down(api, count=2)
    assert_answered_quickly(durations)
    # Five minutes later, as far as the re-queue can tell; and the 5-second targets are past.
    WebhookDelivery.objects.update(next_attempt_at=F("next_attempt_at") - timedelta(minutes=6))
    assert wait_for(lambda: timezone.now() > SlaClock.objects.order_by("-due_at").first().due_at, timeout=10)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[routed_to]):
        # What beat sends, through the broker that is back.
        sweep_sla_clocks_task.apply_async(queue=routed_to)
        requeue_webhook_deliveries_task.apply_async(queue=routed_to)
        expected = 2 * 3 + 2 * 2  # created + two messages per ticket, then breached + escalation per ticket
        caught_up = wait_for(lambda: len(receiver.received) >= expected and not WebhookDelivery.objects.exclude(
            status="delivered").exists())
        assert caught_up, (receiver.received, list(WebhookDelivery.objects.values_list("pk", "event", "status", "attempts")),
                           list(Escalation.objects.values_list("ticket_id", "level")))
        time.sleep(1)  # anything doubled would arrive now
    assert_each_escalated_once(references)
    assert len(receiver.received) == expected
    assert_each_delivered_once(receiver)
