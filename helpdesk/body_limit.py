"""Refuse an oversized request body with 413 before anything reads it.

Django only checks DATA_UPLOAD_MAX_MEMORY_SIZE when `request.body` or a form is read, and DRF's
parsers read the stream directly, so a 53 MB POST used to be read, parsed and imported until
gunicorn killed the worker at 60 s (an HTML 500). This middleware, early in MIDDLEWARE, compares
Content-Length with the limit of the route class (imports may send larger bodies than other
calls) and answers at once. A body of unknown length (chunked) is copied to a spool file while it
streams in and cut off at the limit, so it is never read whole before being refused.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024


def body_limit(path: str) -> int:
    """The largest body, in bytes, accepted at this path (settings.REQUEST_BODY_LIMITS: longest prefix wins)."""
    best, limit = -1, settings.REQUEST_MAX_BODY_BYTES
    for prefix, prefix_limit in settings.REQUEST_BODY_LIMITS.items():
        if path.startswith(prefix) and len(prefix) > best:
            best, limit = len(prefix), prefix_limit
    return limit


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    megabytes = f"{limit / (1024 * 1024):g}"
    message = _("The request body is larger than the limit of %(mb)s MB (%(bytes)d bytes) for this address.") % {
        "mb": megabytes, "bytes": limit,
    }
    if request.path.startswith("/api/"):
        body = {"error": {"code": "body_too_large", "message": message, "fields": {}, "limit_bytes": limit}}
        response: HttpResponse = JsonResponse(body, status=413)
    else:
        response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    # The rest of the body was never read: the connection cannot carry another request.
    response["Connection"] = "close"
    return response


class BodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        if raw_length.strip():
            try:
                length = int(raw_length)
            except ValueError:
                length = 0  # Django reads such a body as empty
            if length > limit:
                return too_large(request, limit)
        elif self._chunked(request) and not self._spool(request, limit):
            return too_large(request, limit)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Django's own check (request.body, forms) answers 413 too, not a 400 page."""
        if isinstance(exception, RequestDataTooBig):
            return too_large(request, min(body_limit(request.path), settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
        return None

    @staticmethod
    def _chunked(request: HttpRequest) -> bool:
        environ = getattr(request, "environ", None)
        if environ is None:  # ASGI: Django has read the body into its own spool file already
            return False
        return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() or bool(
            environ.get("wsgi.input_terminated")
        )

    @staticmethod
    def _spool(request: HttpRequest, limit: int) -> bool:
        """Copy a body of unknown length to a spool file, at most limit bytes; False past it.

        Django reads a body without Content-Length as empty; once spooled, it has one."""
        source = request.environ["wsgi.input"]  # type: ignore[attr-defined]
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - lives with the request
        size = 0
        while chunk := source.read(min(CHUNK, limit + 1 - size)):
            size += len(chunk)
            if size > limit:
                spool.close()
                return False
            spool.write(chunk)
        spool.seek(0)
        request.META["CONTENT_LENGTH"] = str(size)
        request._stream = LimitedStream(spool, size)  # type: ignore[attr-defined]
        request._spooled_body = spool  # type: ignore[attr-defined]  # closed with the request's garbage
        return True
