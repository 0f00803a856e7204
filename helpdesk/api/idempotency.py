"""Idempotency-Key: a retried POST gets the first response and changes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
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
MAX_KEY_LENGTH = 255
# A claim whose request never finished (its worker was killed) may be taken over after this.
STALE_CLAIM = timedelta(minutes=10)


class _Number(str):
    """A JSON number written as its digits and exponent, trailing zeros dropped: 1, 1.0, 10e-1
    and 1e0 are one number (`1e0`). Exact, whatever its length: no float, no rounding."""


def _number(text: str) -> _Number:
    sign, digits, exponent = Decimal(text).as_tuple()
    kept = list(digits)
    while len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1  # type: ignore[operator]
    if kept == [0]:
        sign, exponent = 0, 0
    return _Number(f"{'-' if sign else ''}{''.join(map(str, kept))}e{exponent}")


def _refuse(name: str) -> object:
    raise ValueError(name)  # NaN and Infinity are not JSON; the API's parser refuses them too


def _encode(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode(key)}:{_encode(value[key])}" for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, _Number):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # strings, true, false, null


def canonical_body(body: bytes) -> bytes:
    """The body as one spelling of its JSON: keys sorted, no insignificant whitespace, numbers by
    value (1, 1.0 and 1e0 are one number), strings unescaped. A client retrying the same JSON in
    another key order or another serialiser's spacing sends the same request. A body that is not
    one JSON document (JSON Lines imports, or no JSON at all) is compared byte for byte."""
    try:
        data = json.loads(body, parse_float=_number, parse_int=_number, parse_constant=_refuse)
        return _encode(data).encode()
    except (ValueError, RecursionError):
        return body


def request_digest(request: Request) -> str:
    return hashlib.sha256(
        request.method.encode() + request.path.encode() + canonical_body(request.body)
    ).hexdigest()


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
        if len(key) > MAX_KEY_LENGTH:
            message = _("Idempotency-Key is too long: at most 255 characters.")
            raise Replay(error_response("invalid", message, 400, {HEADER: [message]}))
        digest = request_digest(request)
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
