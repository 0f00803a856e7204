"""Error answers: the API's one error shape under /api/, Django's pages elsewhere, and a 503
with Retry-After while the database cannot serve.

Django calls handler500 inside the `except` block that caught the error
(`django.core.handlers.exception.response_for_exception`), so `sys.exception()` there is the
error, whether a view or a middleware (the session, the login) raised it. Errors raised inside
API views reach `helpdesk.api.errors.exception_handler` first, which answers the same way.

Which errors are "the database cannot serve now" (503, retry in a few seconds) and which stay a
500 (a retry would fail the same way) is `database_unavailable`'s rule below.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views import defaults

from .observability import loggable_path

logger = logging.getLogger(__name__)

# A database restart or a fail-over takes seconds; clients (and browsers' users) wait this long.
RETRY_AFTER_SECONDS = 5
# SQLite primary result codes that go away by themselves: busy and locked (a writer held the
# database past the busy timeout), I/O error, disk full, cannot open the file, lock protocol
# error. Others (SQLITE_ERROR: no such table, a syntax error) are bugs and stay a 500.
SQLITE_TRANSIENT = frozenset({5, 6, 10, 13, 14, 15})
# PostgreSQL SQLSTATE classes of OperationalError that do not go away: 54, program limit exceeded
# (a statement too complex), fails again however long one waits.
POSTGRES_PERMANENT_CLASSES = ("54",)


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` means the database cannot serve now, and the same request may work shortly.

    InterfaceError: the connection is closed or unusable. OperationalError: the server could not
    be reached, dropped the connection (a restart: admin shutdown, "the database system is
    starting up"), or could not serve the statement now: a lock, statement or idle timeout, a
    deadlock or serialization failure, too many connections, disk full; on SQLite "database is
    locked" after the busy timeout, or a file that cannot be opened. Those are 503 with
    Retry-After. Everything else (ProgrammingError, IntegrityError, DataError, SQLite's "no such
    table") is a bug or bad data: a 500.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__  # the driver's error, which Django wrapped
    sqlite_code = getattr(cause, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return sqlite_code & 0xFF in SQLITE_TRANSIENT
    sqlstate = getattr(cause, "sqlstate", None) or ""
    return not sqlstate.startswith(POSTGRES_PERMANENT_CLASSES)


def describe(exc: BaseException) -> str:
    """The error's class, driver code and first line: what an operator needs, no request data."""
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    first_line = str(exc).strip().split("\n", 1)[0][:200]
    return f"{type(exc).__name__}{f' [{code}]' if code else ''}: {first_line}"


def log_unavailable(request: HttpRequest | None, exc: BaseException) -> None:
    """One ERROR line per request, with the request id and access details the context adds.

    Never the query string, the body or the exception's traceback: an outage answers every
    request this way, and the health check (GET /healthz) is what pages someone.
    """
    request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    if request is None:
        logger.error("Database unavailable, answered 503: %s", describe(exc))
        return
    if getattr(request, "_database_unavailable_logged", False):
        return  # the API's handler logged it; a second error on the way out is the same outage
    request._database_unavailable_logged = True  # type: ignore[attr-defined]
    logger.error("Database unavailable, answered 503 to %s %s: %s", request.method, loggable_path(request), describe(exc))


def unavailable_message() -> str:
    return _("The service cannot reach its database at the moment. Please try again in a few seconds.")


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def api_error(code: str, message: str, status: int) -> JsonResponse:
    """The API's error shape, for answers made outside DRF (helpdesk.api.errors makes the rest)."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)


def unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the API's error shape under /api/, a short page elsewhere.

    Built without the database: no template context, no user, no session.
    """
    if is_api(request):
        response: HttpResponse = api_error("database_unavailable", unavailable_message(), 503)
    else:
        title = _("Service temporarily unavailable")
        page = format_html(
            '<!doctype html><html lang="{}"><head><meta charset="utf-8"><title>{}</title></head>'
            "<body><h1>{}</h1><p>{}</p></body></html>",
            get_language() or "en", title, title, unavailable_message(),
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Logged once by log_unavailable: Django would log it again with its traceback (and mail it).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404."""
    if is_api(request):
        return api_error("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 while the database cannot serve, else 500 (Django logs those)."""
    exc = sys.exception()
    if database_unavailable(exc):
        log_unavailable(request, exc)
        return unavailable(request)
    if is_api(request):
        return api_error("server_error", "Server error.", 500)
    return defaults.server_error(request)
