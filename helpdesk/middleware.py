"""Request ids and the access log: one line per request, tied to everything it logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import observability
from .observability import (
    loggable_path,  # the access line's path (helpdesk.views_errors imports it from here too)
)

access_logger = logging.getLogger("helpdesk.access")

# Load balancers ask every few seconds; a healthy answer is logged at DEBUG only.
QUIET_PATHS = frozenset({"/healthz"})


class RequestContextMiddleware:
    """Give each request an id (a sane incoming X-Request-ID, else a new UUID), return it in
    the X-Request-ID header, keep it (and the request, for its user or API key) in the log
    context while the request runs, and write the access line.

    First in MIDDLEWARE, so the line covers every response, redirects and errors included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = observability.new_request_id(request.headers.get(observability.REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = observability.bind(request_id=request_id, request=request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[observability.REQUEST_ID_HEADER] = request_id
            self._log(request, response.status_code, started)
            # Django would log 4xx and 5xx again after the middleware, outside the request's
            # context (no request id); the access line says it all. Exceptions were logged
            # with their traceback inside it already.
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        finally:
            observability.unbind(token)

    def _log(self, request: HttpRequest, status: int, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        path = loggable_path(request)
        if request.path in QUIET_PATHS:
            level = logging.DEBUG if status < 400 else logging.WARNING
        else:
            level = logging.ERROR if status >= 500 else logging.INFO
        access_logger.log(
            level, "%s %s %s %.1fms", request.method, path, status, duration_ms,
            extra={"method": request.method, "path": path, "status": status, "duration_ms": duration_ms},
        )
