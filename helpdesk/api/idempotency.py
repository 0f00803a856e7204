"""Idempotency-Key: a retried POST gets the first response and changes nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from helpdesk.models import IdempotentRequest

from .errors import error_response

HEADER = "Idempotency-Key"


class Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class IdempotentPostMixin:
    """For API views: claim the key before the handler runs, store the response after.

    The claim is a row unique per (user, key), so two concurrent retries cannot both run.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates, checks permissions, throttles
        self._idempotency_row = None
        key = request.headers.get(HEADER, "").strip()
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            raise Replay(error_response("invalid", "Idempotency-Key is too long.", 400, {HEADER: ["At most 255 characters."]}))
        digest = hashlib.sha256(request.method.encode() + request.path.encode() + request.body).hexdigest()
        cutoff = timezone.now() - IdempotentRequest.RETENTION
        IdempotentRequest.objects.filter(user=request.user, key=key, created_at__lt=cutoff).delete()
        try:
            with transaction.atomic():
                self._idempotency_row = IdempotentRequest.objects.create(user=request.user, key=key, request_hash=digest)
        except IntegrityError:
            first = IdempotentRequest.objects.get(user=request.user, key=key)
            if first.request_hash != digest:
                raise Replay(error_response(
                    "idempotency_conflict", "This Idempotency-Key was used with another request.", 409, {HEADER: ["Reused with a different request."]}
                )) from None
            if first.status_code is None:
                raise Replay(error_response("in_progress", "The first request with this key is still running.", 409)) from None
            raise Replay(Response(first.response, status=first.status_code, headers={"Idempotent-Replayed": "true"})) from None

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        row = getattr(self, "_idempotency_row", None)
        if row is not None:
            self._idempotency_row = None
            if response.status_code >= 500 or response.status_code == 429:
                row.delete()  # nothing was done: let the retry run
            else:
                IdempotentRequest.objects.filter(pk=row.pk).update(
                    status_code=response.status_code, response=getattr(response, "data", None)
                )
        return super().finalize_response(request, response, *args, **kwargs)
