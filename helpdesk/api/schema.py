"""The OpenAPI schema says what the API answers: every operation lists its error answers too.

drf-spectacular documents only the success answer of an operation. Clients (and Schemathesis,
tests/api/test_contract.py) then meet 400, 401, 403, 404, 409 and 429 answers the schema never
promised. `AutoSchema` adds them, all in the one error shape of helpdesk.api.errors, by what the
operation can refuse: every operation authenticates, checks permissions and throttles; one with
parameters or a body validates them; a path with an id looks a row up; a write may conflict
(Idempotency-Key, a state). It also describes the Idempotency-Key header every POST accepts.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from .fields import TextField
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import MAX_KEY_LENGTH


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable code, e.g. invalid, not_found, throttled, idempotency_conflict.")
    message = serializers.CharField(help_text="For people, in the request's language.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="The fields at fault (nested ones dotted, list items indexed), each with its messages.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "Seconds to wait."}}
DESCRIPTIONS = {
    "400": "The request's parameters or body are invalid; `fields` names each one at fault.",
    "401": "No valid API key (or session).",
    "403": "The key's scope or the user's role may not do this.",
    "404": "No such object the caller may see, or an invalid cursor.",
    "409": "The object's state refuses it, or the Idempotency-Key was used with another request.",
    "415": "The body is not in a media type this operation reads.",
    "429": "Too many requests (or failed authentications): retry after Retry-After seconds.",
    "503": "The database cannot serve for a moment: retry after Retry-After seconds.",
}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# DRF's CharField trims whitespace and refuses NUL characters; not blank means some other character.
# Python's strip() also takes \x1c-\x1f, which a JSON Schema (ECMA) \s does not match.
NOT_BLANK = r"^[^\x00]*[^\s\x00\x1c-\x1f][^\x00]*$"
ANY_TEXT = r"^[^\x00]*$"


class AutoSchema(openapi.AutoSchema):
    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict[str, Any]:
        meta = super()._get_serializer_field_meta(field, direction)
        # Only plain text fields: email, URL and slug fields have their own format or pattern.
        if direction == "request" and type(field) in (serializers.CharField, TextField) and not field.read_only:
            meta["pattern"] = ANY_TEXT if field.allow_blank else NOT_BLANK
        return meta

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            # django-filter reads an empty value as "not filtered" (`?presence=`, `?team=`): say so.
            schema = parameter.get("schema", {})
            if schema.get("type") == "array":
                continue
            if schema.get("type") == "string" and set(schema) <= {"type", "description"}:
                schema["pattern"] = ANY_TEXT  # a NUL in a text filter is refused; empty is allowed
                continue
            parameter["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
            parameter["description"] = (parameter.get("description", "") + "\n\nEmpty: not filtered.").strip()
        return parameters

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER, {"type": "string", "maxLength": MAX_KEY_LENGTH}, OpenApiParameter.HEADER,
                    description="A retried POST with the same key and body gets the first answer (kept 24 h).",
                )
            )
        return parameters

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not path.startswith("/api/v1/"):
            return operation
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        codes = {"401", "403", "429", "503"}
        paginated = self._is_list_view() and self._get_paginator() is not None and self.method == "GET"
        if operation.get("parameters") or "requestBody" in operation or paginated:
            codes.add("400")
        if "{" in path or paginated:
            codes.add("404")
        if self.method in WRITES:
            codes.add("409")
        if "requestBody" in operation:
            codes.add("415")
        responses = operation.setdefault("responses", {})
        for code in sorted(codes):
            if code in responses:
                continue
            answer: dict[str, Any] = {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": error}}}
            if code in {"429", "503"}:
                answer["headers"] = RETRY_AFTER
            responses[code] = answer
        return operation

