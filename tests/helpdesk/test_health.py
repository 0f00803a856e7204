"""GET /healthz: the load balancer's and the monitoring's view of one web machine."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import datetime, timedelta

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.db import OperationalError
from django.utils import timezone

from config.celery import app
from helpdesk import health
from helpdesk.models import Heartbeat
from helpdesk.tasks import beat_heartbeat_task

NOW = "2026-05-04 10:00:00+00:00"


def healthz(client, query: str = ""):
    response = client.get("/healthz" + query)
    return response, response.json()


@pytest.fixture
def beat_alive(db):
    health.record_heartbeat(at=timezone.now() - timedelta(seconds=30))


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: connecting there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_answers_200_when_database_broker_and_beat_are_fine(client, beat_alive):
    response, body = healthz(client)  # the broker is the test broker: filesystem, or Redis in CI
    assert response.status_code == 200
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "ok"},
            "beat": {"status": "ok", "age_seconds": 30, "max_age_seconds": 180},
        },
    }
    assert "no-cache" in response["Cache-Control"]  # a proxy must never answer for the machine


def test_it_needs_no_login_and_sets_no_cookie(client, beat_alive):
    response, _body = healthz(client)
    assert response.status_code == 200 and not response.cookies


def test_it_answers_503_when_the_database_fails_and_names_only_the_error_class(client, beat_alive, monkeypatch):
    class DeadConnection:
        def cursor(self):
            raise OperationalError('connection to server at "db.internal" (10.0.0.5) failed')

    monkeypatch.setattr(health, "connection", DeadConnection())
    response, body = healthz(client)
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {"status": "fail", "error": "OperationalError"}
    assert body["checks"]["beat"]["status"] == "fail"  # unknown without the database
    assert body["checks"]["broker"] == {"status": "ok"}
    assert "db.internal" not in response.content.decode()  # public: no host names


def test_it_answers_503_quickly_when_the_broker_refuses_connections(client, beat_alive, monkeypatch, closed_port):
    monkeypatch.setitem(app.conf, "broker_write_url", f"redis://127.0.0.1:{closed_port}/0")
    started = time.monotonic()
    response, body = healthz(client)
    assert response.status_code == 503
    assert body["checks"]["broker"] == {"status": "fail", "error": "OperationalError"}
    assert body["checks"]["database"] == {"status": "ok"}
    assert time.monotonic() - started < 5


def test_a_broker_that_accepts_but_never_answers_fails_within_the_timeout(client, beat_alive, monkeypatch, settings):
    settings.HEALTH_BROKER_TIMEOUT_SECONDS = 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections queue up, nobody ever reads them
        monkeypatch.setitem(app.conf, "broker_write_url", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        response, body = healthz(client)
        elapsed = time.monotonic() - started
    assert response.status_code == 503 and body["checks"]["broker"]["status"] == "fail"
    assert elapsed < 4


@pytest.mark.django_db
def test_it_answers_503_when_beat_never_beat(client):
    response, body = healthz(client)
    assert response.status_code == 503
    assert body["checks"]["beat"] == {
        "status": "fail", "age_seconds": None, "max_age_seconds": 180, "error": "NoHeartbeat"
    }


@pytest.mark.django_db
def test_it_answers_503_once_the_heartbeat_is_older_than_the_threshold(client):
    with time_machine.travel(NOW, tick=False) as traveller:
        beat_heartbeat_task.apply()
        traveller.shift(timedelta(seconds=180))
        response, body = healthz(client)
        assert response.status_code == 200 and body["checks"]["beat"]["age_seconds"] == 180
        traveller.shift(timedelta(seconds=1))
        response, body = healthz(client)
        assert response.status_code == 503
        assert body["checks"]["beat"] == {"status": "fail", "age_seconds": 181, "max_age_seconds": 180}
        beat_heartbeat_task.apply()  # beat comes back
        assert healthz(client)[0].status_code == 200


@pytest.mark.django_db
def test_the_threshold_is_configurable(client, settings):
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 60
    with time_machine.travel(NOW, tick=False) as traveller:
        beat_heartbeat_task.apply()
        traveller.shift(timedelta(seconds=61))
        response, body = healthz(client)
    assert response.status_code == 503 and body["checks"]["beat"]["max_age_seconds"] == 60


def test_only_runs_the_named_checks(client, db, monkeypatch, closed_port):
    monkeypatch.setitem(app.conf, "broker_write_url", f"redis://127.0.0.1:{closed_port}/0")
    response, body = healthz(client, "?only=database")  # no heartbeat and no broker: not asked
    assert response.status_code == 200 and body == {"status": "ok", "checks": {"database": {"status": "ok"}}}
    response, body = healthz(client, "?only=database,broker")
    assert response.status_code == 503 and set(body["checks"]) == {"database", "broker"}


@pytest.mark.parametrize("query", ["?only=", "?only=cache", "?only=database,disk"])
def test_an_unknown_check_is_a_clear_400(client, db, query):
    response, body = healthz(client, query)
    assert response.status_code == 400
    assert body["error"]["code"] == "invalid" and "only" in body["error"]["fields"]


def test_it_is_not_redirected_to_https_for_probes_on_the_private_network(client, beat_alive, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301


def test_posting_is_refused(client, beat_alive):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_the_heartbeat_task_keeps_one_row_per_name():
    with time_machine.travel(NOW, tick=False):
        beat_heartbeat_task.apply()
        beat_heartbeat_task.apply()
    assert list(Heartbeat.objects.values_list("name", "at")) == [("beat", datetime.fromisoformat(NOW))]


def test_beat_sends_the_heartbeat_every_minute_with_an_expiry_under_that(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["beat-heartbeat"]
    assert entry["task"] == beat_heartbeat_task.name == "helpdesk.beat_heartbeat"
    assert entry["options"]["expires"] < 60
    now = timezone.now().replace(second=10)
    assert entry["schedule"].remaining_estimate(now).total_seconds() <= 60


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_turns_a_heartbeat_into_a_healthy_answer(client):
    queue = f"test-{uuid.uuid4().hex}"
    assert healthz(client)[0].status_code == 503
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]):
        beat_heartbeat_task.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while not Heartbeat.objects.filter(name=health.BEAT).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert Heartbeat.objects.filter(name=health.BEAT).exists(), "the worker did not run the heartbeat in 60 s"
    response, body = healthz(client)
    assert response.status_code == 200, body
    assert body["checks"]["beat"]["age_seconds"] <= 60
