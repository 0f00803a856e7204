"""Structured logs: who and what every log line is about, without logging customer data.

A context variable holds the current request (its id and the request, to name the user or
API key) or Celery task (its id and name). `ContextFilter`, on the console handler, copies
them onto every record logged meanwhile, from any module; `JsonFormatter` writes one JSON
object per line (LOG_FORMAT=json, the default without DEBUG), `PlainFormatter` a readable line.

Nothing here logs a request body, a query string or a header: those may carry customer
details or credentials. Access lines name the path only, with signed tokens cut out, and
`SecretPathFilter` cuts them out of Django's own lines about a request too.

The Celery signal receivers below are connected when this module is imported, and settings'
LOGGING imports it (the filter) in every process that configures Django logging: web, worker,
beat and commands. The module imports no model, because logging is configured before the apps.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from celery import signals
from django.utils.functional import SimpleLazyObject

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it looks like one a proxy makes (a UUID, nginx's $request_id,
# a trace id); anything else is replaced, so a client cannot inject text into the logs.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Message header carrying the request id to tasks queued during the request.
TASK_HEADER = "helpdesk_request_id"

# URL arguments that are credentials (the survey link's signed token): cut from logged paths.
SECRET_URL_KWARGS = frozenset({"token"})

# Fields a record may carry besides time, level, logger and message, in output order.
CONTEXT_FIELDS = ("request_id", "user_id", "api_key_id", "task_id", "task_name")
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")


@dataclass(frozen=True)
class LogContext:
    request_id: str | None = None
    request: Any = None  # the HttpRequest being served; read for its user, never its data
    task_id: str | None = None
    task_name: str | None = None


_context: ContextVar[LogContext] = ContextVar("helpdesk_log_context", default=LogContext())


def current() -> LogContext:
    return _context.get()


def bind(**values: Any) -> Token[LogContext]:
    """Add values to the current context; give the token back to `unbind` when done."""
    return _context.set(replace(_context.get(), **values))


def unbind(token: Token[LogContext]) -> None:
    _context.reset(token)


def new_request_id(incoming: str | None) -> str:
    if incoming and SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def identity(request: Any) -> tuple[int | None, int | None]:
    """(user id, API key id) of a request, if already known: never runs a query to find out.

    DRF stores the user and key it authenticated on the Django request; the session user is
    known once something evaluated request.user (Django caches it in `_cached_user`).
    """
    if request is None:
        return None, None
    attributes = request.__dict__
    user = attributes.get("user")
    if user is None or isinstance(user, SimpleLazyObject):
        user = attributes.get("_cached_user")
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    auth = attributes.get("auth")
    meta = getattr(auth, "_meta", None)
    api_key_id = auth.pk if meta is not None and meta.label_lower == "helpdesk.apikey" else None
    return user_id, api_key_id


class ContextFilter(logging.Filter):
    """Stamp the current request or task onto every record (attach it to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        user_id, api_key_id = identity(context.request)
        for name, value in (
            ("request_id", context.request_id),
            ("user_id", user_id),
            ("api_key_id", api_key_id),
            ("task_id", context.task_id),
            ("task_name", context.task_name),
        ):
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def without_secrets(text: str, request: Any) -> str:
    """`text` with the request's secret URL arguments (resolved by then) cut out."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name in SECRET_URL_KWARGS & match.kwargs.keys():
            value = str(match.kwargs[name])
            if value:
                text = text.replace(value, f"<{name}>")
    return text


def loggable_path(request: Any) -> str:
    """The path without its query string, and without any secret URL argument."""
    return without_secrets(request.path, request)


class SecretPathFilter(logging.Filter):
    """Cut secret URL arguments out of a record about a request (attach it to handlers, and to
    the loggers Django writes request paths to, so every handler there gets the record clean).

    Django's own lines name the full path: "Forbidden (CSRF cookie not set.): /survey/…/"
    (django.security.csrf), "Method Not Allowed (PUT): …" and "Internal Server Error: …"
    (django.request); the record carries the request, which tells where the secret is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if getattr(request, "resolver_match", None) is not None:
            message = record.getMessage()
            safe = without_secrets(message, request)
            if safe != message:
                record.msg, record.args = safe, ()
        return True


def _utc_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields that are unknown for a record are left out."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS + ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """`time level logger message [request=… user=…]` for development consoles."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            f"{name.removesuffix('_id')}={value}"
            for name in CONTEXT_FIELDS
            if name != "task_name" and (value := getattr(record, name, None)) is not None
        ]
        if not tags:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the tags
        return f"{head} [{' '.join(tags)}]{newline}{rest}"


# Celery: task records carry the task's id and name, and the request id of the request that
# queued the task. The receivers run in the process that publishes or runs the task.


@signals.before_task_publish.connect(weak=False, dispatch_uid="helpdesk.observability.publish")
def _pass_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = _context.get().request_id
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_tokens: dict[str, Token[LogContext]] = {}


@signals.task_prerun.connect(weak=False, dispatch_uid="helpdesk.observability.prerun")
def _bind_task(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    values: dict[str, Any] = {"task_id": task_id, "task_name": getattr(task, "name", None)}
    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None)
    if request_id and SANE_REQUEST_ID.fullmatch(str(request_id)):
        values["request_id"] = str(request_id)
    _task_tokens[task_id] = bind(**values)


@signals.task_postrun.connect(weak=False, dispatch_uid="helpdesk.observability.postrun")
def _unbind_task(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        try:
            unbind(token)
        except ValueError:  # set in another context (a thread pool): nothing of ours to undo here
            pass
