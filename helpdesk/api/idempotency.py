"""Idempotency-Key: a retried POST gets the first response and changes nothing."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from helpdesk.models import IdempotentRequest

from .errors import error_response

HEADER = "Idempotency-Key"
# A claim whose request never finished (its worker was killed) may be taken over after this.
STALE_CLAIM = timedelta(minutes=10)


class Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class IdempotentPostMixin:
    """For API views: claim the key before the handler runs, store the response after.

    The claim is a row unique per (user, key), inserted in the request's own transaction with
    the work and the stored response: a concurrent retry waits on the unique index until the
    first commits (then gets its response) or rolls back (then runs itself). A request that
    fails (a 5xx, a 429, the database going away mid-request) rolls back its claim with its
    work, so its retry runs: no claim outlives a request that did nothing.
    """

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        if request.method != "POST" or not request.headers.get(HEADER, "").strip():
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates, checks permissions, throttles
        self._idempotency_row = None
        key = request.headers.get(HEADER, "").strip()
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            message = _("Idempotency-Key is too long: at most 255 characters.")
            raise Replay(error_response("invalid", message, 400, {HEADER: [message]}))
        digest = hashlib.sha256(request.method.encode() + request.path.encode() + request.body).hexdigest()
        now = timezone.now()
        IdempotentRequest.objects.filter(user=request.user, key=key).filter(
            Q(created_at__lt=now - IdempotentRequest.RETENTION) | Q(status_code=None, created_at__lt=now - STALE_CLAIM)
        ).delete()
        try:
            with transaction.atomic():
                self._idempotency_row = IdempotentRequest.objects.create(user=request.user, key=key, request_hash=digest)
        except IntegrityError:
            first = IdempotentRequest.objects.get(user=request.user, key=key)
            if first.request_hash != digest:
                message = _("This Idempotency-Key was used with another request.")
                raise Replay(error_response("idempotency_conflict", message, 409, {HEADER: [message]})) from None
            if first.status_code is None:
                message = _("The first request with this Idempotency-Key is still running.")
                raise Replay(error_response("in_progress", message, 409)) from None
            raise Replay(Response(first.response, status=first.status_code, headers={"Idempotent-Replayed": "true"})) from None

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except BaseException:
            self._release()  # a crash did nothing the client can rely on: let the retry run
            raise

    def _release(self) -> None:
        """Roll the claim back with whatever the request did (the transaction may be broken)."""
        if getattr(self, "_idempotency_row", None) is not None:
            self._idempotency_row = None
            transaction.set_rollback(True)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        row = getattr(self, "_idempotency_row", None)
        if row is not None:
            if response.status_code >= 500 or response.status_code == 429:
                self._release()  # nothing was done: let the retry run
            else:
                self._idempotency_row = None
                IdempotentRequest.objects.filter(pk=row.pk).update(
                    status_code=response.status_code, response=getattr(response, "data", None)
                )
        return super().finalize_response(request, response, *args, **kwargs)
