"""Structured logs: every line says which request (and user or API key) or task wrote it."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from helpdesk import observability
from tickets import csat, services
from tickets.models import CsatSurvey

from ..factories import CustomerFactory, TicketFactory

UUID_HEX = re.compile(r"[0-9a-f]{32}")


class JsonLines:
    """The JSON lines written while the test runs, through the filter and formatter settings use."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(observability.ContextFilter())
        self.handler.setFormatter(observability.JsonFormatter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]  # one object per line, each valid

    def access(self) -> list[dict]:
        return [r for r in self.records if r["logger"] == "helpdesk.access"]

    def attach(self) -> None:
        root = logging.getLogger()
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)


@pytest.fixture
def logs():
    lines = JsonLines()
    root = logging.getLogger()
    old_level = root.level
    lines.attach()
    yield lines
    root.removeHandler(lines.handler)
    root.setLevel(old_level)


def test_each_request_writes_one_access_line_with_its_request_id_and_user(client, alice, logs):
    client.force_login(alice.user)
    response = client.get("/admin/tickets/ticket/")
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert UUID_HEX.fullmatch(request_id)
    [line] = logs.access()
    assert line["request_id"] == request_id and line["user_id"] == alice.user.pk
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/admin/tickets/ticket/", 200, "INFO")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("Z")


def test_a_sane_incoming_request_id_is_kept_and_returned(client, db, logs):
    response = client.get("/admin/login/", headers={"X-Request-ID": "lb-7f3a.42:abc_DEF"})
    assert response["X-Request-ID"] == "lb-7f3a.42:abc_DEF"
    assert logs.access()[0]["request_id"] == "lb-7f3a.42:abc_DEF"


@pytest.mark.parametrize("incoming", ["", "two words", "x" * 129, "id\nFAKE log line", "<script>", "-leading-dash"])
def test_an_odd_incoming_request_id_is_replaced(client, db, logs, incoming):
    response = client.get("/admin/login/", headers={"X-Request-ID": incoming})
    assert UUID_HEX.fullmatch(response["X-Request-ID"])
    assert "FAKE" not in logs.text


def test_service_records_during_an_api_request_carry_the_request_id_user_and_api_key(
    api, integration, logs, monkeypatch
):
    api_key, _plain = integration
    opened = services.open_ticket

    def open_and_log(**kwargs):
        logging.getLogger("tickets.services").info("opening a ticket")
        return opened(**kwargs)

    monkeypatch.setattr(services, "open_ticket", open_and_log)
    body = {
        "subject": "退货申请", "channel": "web_chat", "priority": "normal",
        "customer": {"external_id": "c-1", "name": "张三", "phone": "13800138000", "email": "zhang@example.com"},
        "message": {"body": "我要退货", "sent_at": "2026-11-23T09:00:00+08:00", "external_id": "m-1"},
    }
    response = api.post("/api/v1/tickets/", body, format="json", HTTP_X_REQUEST_ID="shop-req-1")
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "shop-req-1"
    [service_line] = [r for r in logs.records if r["message"] == "opening a ticket"]
    [access] = logs.access()
    for line in (service_line, access):
        assert line["request_id"] == "shop-req-1"
        assert line["user_id"] == api_key.user_id and line["api_key_id"] == api_key.pk
    assert access["status"] == 201 and access["path"] == "/api/v1/tickets/"
    # The body's customer details are never logged.
    for secret in ("13800138000", "zhang@example.com", "张三", "我要退货"):
        assert secret not in logs.text


def test_query_strings_are_not_logged(client, ada, logs):
    client.force_login(ada)
    client.get("/admin/tickets/ticket/?q=13800138000&customer__email=zhang%40example.com")
    [access] = logs.access()
    assert access["path"] == "/admin/tickets/ticket/"
    assert "13800138000" not in logs.text and "zhang" not in logs.text


def test_the_survey_token_is_cut_from_the_logged_path(client, support_team, alice, logs):
    ticket = TicketFactory(team=support_team, assignee=alice, status="open", customer=CustomerFactory(language="en"))
    services.change_status(ticket=ticket, status="solved")
    survey = CsatSurvey.objects.get(ticket=ticket)
    token = csat.survey_token(survey)
    assert client.get(csat.survey_path(survey)).status_code == 200
    [access] = logs.access()
    assert access["path"] == "/survey/<token>/"
    assert token not in logs.text


def test_a_crash_is_logged_once_with_its_traceback_and_request_id(client, support_team, alice, logs, monkeypatch):
    def crash(token):
        raise RuntimeError("boom")

    monkeypatch.setattr(csat, "survey_for_token", crash)
    client.raise_request_exception = False
    response = client.get("/survey/anything/")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    errors = [r for r in logs.records if r["logger"] == "django.request"]
    assert len(errors) == 1  # not logged again, without its request id, after the middleware
    assert errors[0]["request_id"] == request_id and "RuntimeError: boom" in errors[0]["exception"]
    [access] = logs.access()
    assert access["status"] == 500 and access["level"] == "ERROR" and access["request_id"] == request_id


def test_a_healthy_probe_logs_at_debug_only(client, db, logs):
    from helpdesk import health

    health.record_heartbeat()
    assert client.get("/healthz").status_code == 200
    assert logs.access()[0]["level"] == "DEBUG"


def test_no_context_outside_a_request(logs):
    logging.getLogger("somewhere").warning("plain")
    [line] = logs.records
    assert set(line) == {"time", "level", "logger", "message"}


def test_the_plain_format_shows_the_ids_in_brackets():
    record = logging.LogRecord("tickets.services", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    token = observability.bind(request_id="r-1")
    try:
        observability.ContextFilter().filter(record)
    finally:
        observability.unbind(token)
    assert observability.PlainFormatter().format(record).endswith("INFO tickets.services hello world [request=r-1]")


@app.task(name="tests.log_inside_a_task")
def log_inside_a_task() -> None:
    logging.getLogger("tests.task").info("inside the task")


def test_an_eager_task_inside_a_request_carries_both_ids(logs):
    token = observability.bind(request_id="req-eager")
    try:
        result = log_inside_a_task.apply()
    finally:
        observability.unbind(token)
    [line] = [r for r in logs.records if r["message"] == "inside the task"]
    assert line["task_id"] == result.id and line["task_name"] == "tests.log_inside_a_task"
    assert line["request_id"] == "req-eager"
    assert observability.current() == observability.LogContext()  # nothing left behind


@pytest.mark.celery_worker
def test_a_real_worker_logs_the_task_id_and_the_request_id_that_queued_it(logs):
    queue = f"test-{uuid.uuid4().hex}"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]):
        logs.attach()  # starting a worker configures logging anew (handlers and level)
        token = observability.bind(request_id="req-from-web")
        try:
            result = log_inside_a_task.apply_async(queue=queue)
        finally:
            observability.unbind(token)
        deadline = time.monotonic() + 30
        while "inside the task" not in logs.text and time.monotonic() < deadline:
            time.sleep(0.2)
    [line] = [r for r in logs.records if r["message"] == "inside the task"]
    assert line["task_id"] == result.id and line["task_name"] == "tests.log_inside_a_task"
    assert line["request_id"] == "req-from-web"
