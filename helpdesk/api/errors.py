"""One error shape for the whole API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk import views_errors
from helpdesk.errors import DomainError

# Domain refusals that are about the ticket's state, not the request's shape.
CONFLICT_CODES = frozenset(
    {
        "illegal_transition", "ticket_closed", "idempotency_conflict", "in_progress", "duplicate", "already_escalated",
        "not_escalated", "already_assigned", "no_capacity", "complaint_closed", "already_submitted", "already_disputed", "acknowledged", "disputed", "resolved", "not_disputed",
    }
)

# Domain refusals about who is asking, not what they ask.
FORBIDDEN_CODES = frozenset({"no_reports", "forbidden_team"})


def _fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for name, value in detail.items():
            if isinstance(value, dict):
                for sub, messages in _fields(value).items():
                    out[f"{name}.{sub}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub, messages in _fields(item).items():
                        out[f"{name}[{index}].{sub}"] = messages
            else:
                out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    return {}


def error_response(code: str, message: str, status_code: int, fields: dict | None = None, headers: dict | None = None) -> Response:
    return Response(
        {"error": {"code": code, "message": message, "fields": fields or {}}}, status=status_code, headers=headers
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if views_errors.database_unavailable(exc):
        # Connecting, authenticating the key or any query of the view: clients retry shortly.
        views_errors.log_unavailable(context.get("request"), exc)
        return error_response(
            "database_unavailable", views_errors.unavailable_message(), status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(views_errors.RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DomainError):
        status_code = (
            status.HTTP_409_CONFLICT if exc.code in CONFLICT_CODES
            else status.HTTP_403_FORBIDDEN if exc.code in FORBIDDEN_CODES
            else status.HTTP_400_BAD_REQUEST
        )
        fields = {exc.field: [exc.message]} if exc.field else {}
        return error_response(exc.code, exc.message, status_code, fields)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail) if isinstance(exc.detail, dict) else {"non_field_errors": [str(d) for d in exc.detail]}
        first = next(iter(fields.values()), ["Invalid input."])[0]
        response.data = {"error": {"code": "invalid", "message": first, "fields": fields}}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"error": {"code": str(code), "message": str(detail), "fields": {}}}
    return response
