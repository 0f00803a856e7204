"""Workers killed for real: a Celery worker in its own process group (prefork, one pool process)
on the test database and the configured broker, killed with SIGKILL.

They need a broker that delivers an unacknowledged message again (Redis after its visibility
timeout, set to a few seconds here; RabbitMQ when the connection drops) and a database another
process can open (PostgreSQL: SQLite's test database lives in this process's memory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app
from helpdesk.models import Notification, TaskDelivery, WebhookDelivery, WebhookEndpoint
from helpdesk.tasks import deliver_webhook_task

from .crashing_tasks import kill_own_worker_task, note_task

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3  # seconds; Redis's default of an hour is what production runs
MAX_DELIVERIES = 3

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="a worker in another process shares the test database: PostgreSQL only",
    ),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "pyamqp://")),
        reason="needs a broker that delivers unacknowledged messages again (Redis or RabbitMQ); the filesystem one never does",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


class Worker:
    """`celery worker` in a new session, so one killpg takes the main process and its pool."""

    def __init__(self, queue: str, log: Path, **env_overrides: str) -> None:
        database = urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
        env = {
            **os.environ,
            "DATABASE_URL": database.geturl(),
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
            "TASK_MAX_DELIVERIES": str(MAX_DELIVERIES),
            # The killed worker's claim on the delivery lasts 2 × this + 5 s: the new worker
            # waits that out before it sends.
            "WEBHOOK_TIMEOUT_SECONDS": "2",
            "LOG_FORMAT": "plain",
            **env_overrides,
        }
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
                "--queues", queue, "--hostname", f"{log.stem}@%h", "--loglevel=INFO", "--include",
                "tests.faults.crashing_tasks", "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self) -> None:
        assert wait_for(lambda: " ready." in self.output() or not self.alive(), 60) and self.alive(), self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def pool_processes(self) -> list[int]:
        """The pids of the pool's processes (the main process's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill(self) -> None:
        """SIGKILL to the whole group: no warm shutdown, nothing acknowledged or given back."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the pool too, even if the main process is gone
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._log_file.close()


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[[], Worker]]:
    """Start workers on a queue of the test's own (no other worker takes its tasks); all are killed at the end."""
    queue = f"test-{uuid.uuid4().hex}"
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(queue, tmp_path / f"worker{len(started) + 1}-{queue[5:13]}.log")
        started.append(worker)  # killed at the end even if it never gets ready
        worker.wait_ready()
        return worker

    start.queue = queue
    yield start
    for worker in started:
        worker.kill()
    with app.connection_for_write() as broker:  # the queue and its bindings, which Redis would keep
        declared = app.amqp.queues[queue].bind(broker.default_channel)
        declared.declare()  # so this connection knows the bindings it deletes
        declared.delete()
        declared.exchange.delete()  # named after the queue (RabbitMQ keeps it otherwise)


class HangingReceiver:
    """A webhook receiver that holds its first request until released (the worker is killed
    meanwhile), answers the others 200, and acts once per X-Helpdesk-Delivery id."""

    def __init__(self) -> None:
        self.got_first = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []  # the delivery id of every request
        self.acted_on: list[str] = []  # what the receiver did something for: once per id
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                delivery_id = self.headers["X-Helpdesk-Delivery"]
                receiver.seen.append(delivery_id)
                if len(receiver.seen) == 1:
                    receiver.got_first.set()
                    receiver.release.wait(30)
                    return  # no answer: its sender is dead by now
                if delivery_id not in receiver.acted_on:
                    receiver.acted_on.append(delivery_id)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HangingReceiver]:
    r = HangingReceiver()
    yield r
    r.close()


def test_a_task_whose_worker_is_killed_runs_again_on_a_new_worker_with_one_effect(workers, receiver):
    endpoint = WebhookEndpoint.objects.create(name="shop", url=receiver.url, secret="s3cret", events=["ticket.created"])
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="ticket.created", payload={"event": "ticket.created", "data": {"reference": "T00000001"}}
    )
    first = workers()
    task = deliver_webhook_task.apply_async((delivery.pk,), queue=workers.queue)
    assert receiver.got_first.wait(30), first.output()
    posted_at = time.monotonic()
    first.kill()  # in the middle of the POST
    receiver.release.set()
    assert TaskDelivery.objects.get(task_id=task.id).deliveries == 1  # the dead worker's count stays
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDelivery.Status.PENDING

    # Redis gives the message to a worker once it has been unacknowledged longer than the
    # visibility timeout; a starting worker looks at once (RabbitMQ needs no wait).
    time.sleep(max(0.0, posted_at + VISIBILITY_TIMEOUT + 1 - time.monotonic()))
    second = workers()
    assert wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDelivery.Status.DELIVERED, 30), (
        second.output()
    )
    assert wait_for(lambda: not TaskDelivery.objects.filter(task_id=task.id).exists(), 10), second.output()
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert (row.attempts, row.response_code) == (1, 200)
    # Sent twice under one delivery id (at least once), acted on once.
    assert receiver.seen == [str(delivery.pk)] * 2
    assert receiver.acted_on == [str(delivery.pk)]


def test_a_task_that_always_kills_its_worker_is_delivered_a_bounded_number_of_times_then_flagged(workers, tmp_path, ada):
    notes = tmp_path / "notes.txt"
    notes.touch()
    worker = workers()
    task = kill_own_worker_task.apply_async((str(notes),), queue=workers.queue)

    def flagged() -> bool:
        return TaskDelivery.objects.filter(task_id=task.id, flagged_at__isnull=False).exists()

    assert wait_for(flagged, 45), worker.output()
    assert notes.read_text().count("started") == MAX_DELIVERIES
    assert TaskDelivery.objects.get(task_id=task.id).deliveries == MAX_DELIVERIES + 1  # the last one did not run

    # The worker is still up and takes the next task; the flagged one never comes back.
    note_task.apply_async((str(notes), "next"), queue=workers.queue)
    assert wait_for(lambda: "next" in notes.read_text(), 20), worker.output()
    time.sleep(1)
    assert worker.alive()
    assert notes.read_text().count("started") == MAX_DELIVERIES
    assert TaskDelivery.objects.get(task_id=task.id).deliveries == MAX_DELIVERIES + 1
    assert Notification.objects.filter(recipient=ada, kind="task_flagged").count() == 1
    assert "was delivered 4 times" in worker.output()
