"""PostgreSQL restarted under load: requests fail cleanly (503 with the error shape) and recover by themselves.

The database is made unreachable the way a web process sees a stopped server: PostgreSQL at a
closed port, SQLite at a file in a folder that does not exist. Every test puts the connection
back however it ends. The test client keeps one connection for the whole test (it leaves out
the close_old_connections a WSGI server runs when each request starts and ends), so `served`
runs it around each request, as gunicorn does.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    close_old_connections,
    connection,
)
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from helpdesk import views_errors
from helpdesk.models import Customer
from tickets.models import Message, Ticket

from ..factories import TicketFactory

# Real commits and connections: no test transaction around the requests.
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL sessions and locks")

TICKETS = "/api/v1/tickets/"
NAME, PHONE = "王小明", "13912345678"
NEW_TICKET = {
    "subject": "退款", "channel": "email", "customer": {"name": NAME, "phone": PHONE},
    "message": {"body": f"我的电话是 {PHONE}"},
}


def closed_port() -> int:
    """A loopback port nothing listens on: connecting there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_unreachable() -> Iterator[None]:
    """The default connection points at a database that cannot be reached until the block ends."""
    saved = dict(connection.settings_dict)
    kept = None
    if connection.vendor == "sqlite":
        # The in-memory test database lives as long as its connection: keep it aside.
        kept, connection.connection = connection.connection, None
        connection.settings_dict["NAME"] = "/nonexistent-folder/helpdesk.sqlite3"
    else:
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=closed_port())
    try:
        yield
    finally:
        if connection.vendor == "sqlite":
            connection.settings_dict.update(saved)
            connection.connection = kept
        else:
            connection.close()
            connection.settings_dict.update(saved)


def served(send):
    """One request as a WSGI server serves it: a connection that broke or aged is closed when
    the request starts and ends (request_started / request_finished → close_old_connections)."""
    close_old_connections()
    try:
        return send()
    finally:
        close_old_connections()


@pytest.fixture
def api(integration) -> APIClient:
    client = APIClient(raise_request_exception=False)  # the 5xx page, not the exception
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {integration[1]}")
    return client


@pytest.fixture
def browser(ada) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(ada)  # the session row is written while the database is up
    return client


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == str(views_errors.RETRY_AFTER_SECONDS)
    assert response.json() == {
        "error": {"code": "database_unavailable", "message": views_errors.unavailable_message(), "fields": {}}
    }


def rows() -> tuple[int, int, int]:
    return Customer.objects.count(), Ticket.objects.count(), Message.objects.count()


@transactional
def test_while_the_database_cannot_be_reached_requests_answer_503_and_the_next_ones_succeed(api, browser, caplog):
    before = rows()
    with database_unreachable(), caplog.at_level(logging.INFO):
        listed = served(lambda: api.get(TICKETS))
        created = served(lambda: api.post(TICKETS, NEW_TICKET, format="json"))
        in_english = served(lambda: api.get(TICKETS, HTTP_ACCEPT_LANGUAGE="en"))
        page = served(lambda: browser.get("/admin/tickets/ticket/"))

    for response in (listed, created):
        assert_unavailable(response)
    with translation.override("en"):
        assert in_english.json()["error"]["message"] == views_errors.unavailable_message()
    assert page.status_code == 503 and page["Retry-After"] == str(views_errors.RETRY_AFTER_SECONDS)
    assert page["Content-Type"].startswith("text/html") and b"<h1>" in page.content

    # Logged once each at ERROR, by class and path: no traceback, no mail, no customer data.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "helpdesk.access"]
    assert [r.name for r in errors] == ["helpdesk.views_errors"] * 4
    assert all("Database unavailable, answered 503" in r.getMessage() and r.exc_info is None for r in errors)
    assert "OperationalError" in errors[1].getMessage() and "POST /api/v1/tickets/" in errors[1].getMessage()
    assert NAME not in caplog.text and PHONE not in caplog.text

    # Back: no restart, no new client; nothing was half-written meanwhile.
    assert rows() == before
    assert served(lambda: api.get(TICKETS)).status_code == 200
    assert served(lambda: api.post(TICKETS, NEW_TICKET, format="json")).status_code == 201
    assert served(lambda: browser.get("/admin/tickets/ticket/")).status_code == 200
    assert Ticket.objects.count() == before[1] + 1


def driver_error(message: str) -> Exception:
    """The error this engine's driver raises when the server goes away in the middle of a write."""
    if connection.vendor == "sqlite":
        error = sqlite3.OperationalError(message)
        error.sqlite_errorcode, error.sqlite_errorname = 10, "SQLITE_IOERR"  # set by the C module when real
        return error
    return psycopg.errors.AdminShutdown(message)


@transactional
def test_a_write_cut_by_a_database_error_is_rolled_back_and_answered_503(api, caplog):
    """The ticket and its customer are inserted, then the message's INSERT fails: nothing stays."""
    before = rows()

    def dies_at_the_message(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "tickets_message"'):
            raise OperationalError("terminating connection due to administrator command") from driver_error(
                "terminating connection due to administrator command"
            )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(dies_at_the_message), caplog.at_level(logging.ERROR):
        response = served(lambda: api.post(TICKETS, NEW_TICKET, format="json"))
    assert_unavailable(response)
    assert rows() == before
    assert NAME not in caplog.text and PHONE not in caplog.text
    assert served(lambda: api.post(TICKETS, NEW_TICKET, format="json")).status_code == 201


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (InterfaceError("connection already closed"), True),
        (OperationalError("could not connect"), True),
        (ProgrammingError("relation does not exist"), False),
        (IntegrityError("duplicate key"), False),
        (DataError("value too long"), False),
        (RuntimeError("not the database"), False),
        (None, False),
    ],
)
def test_only_errors_of_an_unavailable_database_are_503(error, unavailable):
    assert views_errors.database_unavailable(error) is unavailable


def wrapped(driver: Exception) -> OperationalError:
    try:
        raise OperationalError(str(driver)) from driver
    except OperationalError as error:
        return error


def sqlite_error(code: int, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(name)
    error.sqlite_errorcode, error.sqlite_errorname = code, name
    return error


@pytest.mark.parametrize(
    ("driver", "unavailable"),
    [
        (sqlite_error(5, "SQLITE_BUSY"), True),  # "database is locked" after the busy timeout
        (sqlite_error(6, "SQLITE_LOCKED"), True),
        (sqlite_error(14, "SQLITE_CANTOPEN"), True),
        (sqlite_error(266, "SQLITE_IOERR_READ"), True),  # an extended code of SQLITE_IOERR
        (sqlite_error(1, "SQLITE_ERROR"), False),  # "no such table": a missing migration, not an outage
        (psycopg.OperationalError("connection refused"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),  # a restart
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), True),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.TooManyConnections("too many clients"), True),
        (psycopg.errors.StatementTooComplex("stack depth limit exceeded"), False),
    ],
)
def test_driver_errors_are_told_apart_by_their_code(driver, unavailable):
    assert views_errors.database_unavailable(wrapped(driver)) is unavailable


@transactional
def test_other_errors_stay_a_500_in_the_error_shape(api, monkeypatch):
    def broken(**kwargs):
        raise ProgrammingError('relation "tickets_ticket" does not exist')

    monkeypatch.setattr("tickets.intake.create_ticket", broken)
    response = served(lambda: api.post(TICKETS, NEW_TICKET, format="json"))
    assert response.status_code == 500 and "Retry-After" not in response
    assert response.json()["error"]["code"] == "server_error"


# --- PostgreSQL: real sessions ended by the server -------------------------------------------


@contextmanager
def another_session() -> Iterator[psycopg.Connection]:
    """A session of our own on the test database, beside Django's."""
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"], autocommit=True
    ) as other:
        yield other


def terminate(pid: int) -> None:
    """End a session from another one, as a restart or an administrator does, and wait until it is gone."""
    with another_session() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 5
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the session did not end"
            time.sleep(0.01)


@pytest.fixture
def kept_connections():
    """Connections kept between requests (CONN_MAX_AGE), checked before reuse (CONN_HEALTH_CHECKS)."""
    saved = {key: connection.settings_dict[key] for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)
    yield
    connection.close()
    connection.settings_dict.update(saved)


@transactional
@postgres_only
def test_a_kept_connection_the_server_ended_is_replaced_before_the_next_request(api, kept_connections):
    assert served(lambda: api.get(TICKETS)).status_code == 200
    pid = connection.connection.info.backend_pid
    terminate(pid)
    response = served(lambda: api.post(TICKETS, NEW_TICKET, format="json"))
    assert response.status_code == 201  # the health check found it dead and reconnected: no error at all
    assert connection.connection.info.backend_pid != pid


@transactional
@postgres_only
def test_a_session_ended_in_the_middle_of_a_request_answers_503_and_the_next_request_reconnects(
    api, kept_connections, monkeypatch, caplog
):
    from tickets import intake

    before = rows()
    original = intake.create_ticket

    def cut_off(**kwargs):
        terminate(connection.connection.info.backend_pid)
        return original(**kwargs)

    monkeypatch.setattr(intake, "create_ticket", cut_off)
    with caplog.at_level(logging.ERROR):
        response = served(lambda: api.post(TICKETS, NEW_TICKET, format="json"))
    assert_unavailable(response)
    [logged] = [r for r in caplog.records if r.name == "helpdesk.views_errors"]
    assert "OperationalError" in logged.getMessage() or "InterfaceError" in logged.getMessage()
    monkeypatch.undo()
    assert served(lambda: api.post(TICKETS, NEW_TICKET, format="json")).status_code == 201
    assert rows()[1] == before[1] + 1  # only the second one


@transactional
@postgres_only
def test_a_lock_not_granted_in_time_is_a_503_too(api, kept_connections):
    """Under load a row lock may be held longer than lock_timeout allows: retry shortly."""
    ticket = TicketFactory(status="open")
    assert served(lambda: api.get(f"{TICKETS}{ticket.reference}/")).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")  # a session setting: this kept connection keeps it
    url = f"{TICKETS}{ticket.reference}/transition"
    with another_session() as other, other.transaction():
        other.execute("SELECT 1 FROM tickets_ticket WHERE id = %s FOR UPDATE", [ticket.pk])
        response = served(lambda: api.post(url, {"status": "pending"}, format="json"))
    assert_unavailable(response)
    assert served(lambda: api.post(url, {"status": "pending"}, format="json")).status_code == 200



@transactional
@postgres_only
def test_a_retry_with_the_same_idempotency_key_runs_after_the_session_was_ended_mid_request(
    api, kept_connections, monkeypatch
):
    """The claim dies with the request's transaction: the platform's retry is not told 'still running'."""
    from tickets import intake

    before = rows()
    original = intake.create_ticket

    def cut_off(**kwargs):
        terminate(connection.connection.info.backend_pid)
        return original(**kwargs)

    monkeypatch.setattr(intake, "create_ticket", cut_off)
    assert_unavailable(served(lambda: api.post(TICKETS, NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="cut-1")))
    monkeypatch.undo()
    retry = served(lambda: api.post(TICKETS, NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="cut-1"))
    assert retry.status_code == 201, retry.content[:300]
    again = served(lambda: api.post(TICKETS, NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="cut-1"))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert rows()[1] == before[1] + 1


@transactional
@postgres_only
def test_a_retry_sent_while_the_first_request_runs_waits_for_its_answer_instead_of_a_409(integration, monkeypatch):
    """A chat platform that timed out resends at once: it gets the first request's answer, not 'still running'."""
    import threading

    from django.db import connections

    from tickets import intake

    inside, go = threading.Event(), threading.Event()
    original = intake.create_ticket

    def slow(**kwargs):
        inside.set()
        go.wait(10)
        return original(**kwargs)

    monkeypatch.setattr(intake, "create_ticket", slow)
    answers = {}

    def post(name):
        client = APIClient(raise_request_exception=False)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {integration[1]}")
        try:
            answers[name] = client.post(TICKETS, NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="slow-1")
        finally:
            connections.close_all()

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert inside.wait(10)
    retry = threading.Thread(target=post, args=("retry",))
    retry.start()
    retry.join(1.0)  # it waits on the first request's claim
    go.set()
    first.join(20)
    retry.join(20)
    assert answers["first"].status_code == 201, answers["first"].content[:300]
    assert answers["retry"].status_code == 201, answers["retry"].content[:300]
    assert answers["retry"].headers["Idempotent-Replayed"] == "true"
    assert answers["retry"].json() == answers["first"].json()
    assert Ticket.objects.count() == 1
