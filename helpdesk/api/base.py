"""What every API view shares: idempotent POSTs, cursor pagination, per-action permissions."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import pagination, serializers, viewsets
from rest_framework.request import Request

from .idempotency import IdempotentPostMixin


class CursorPagination(pagination.CursorPagination):
    """Stable pages over any number of rows: each page is one index range, never an OFFSET."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-created_at"

    def get_page_size(self, request: Request) -> int:
        """`page_size` given is a whole number from 1, once; above max_page_size it is cut to that.
        DRF would quietly use the default for "abc" or 0, so a typo would look like a setting."""
        given = request.query_params.getlist(self.page_size_query_param)
        if not given:
            return self.page_size
        text = given[0].strip()
        # Digits only, and not all zeros; never int() of a long string (Python refuses 4300 digits).
        if len(given) > 1 or not (text.isascii() and text.isdigit()) or not text.strip("0"):
            message = _("Give a whole number of at least 1, once.")
            raise serializers.ValidationError({self.page_size_query_param: [message]})
        digits = text.lstrip("0")
        return self.max_page_size if len(digits) > 6 else min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = f"Results per page (default {self.page_size}; above {self.max_page_size}, {self.max_page_size})."
        return parameters


class ApiViewSet(IdempotentPostMixin, viewsets.GenericViewSet):
    """Base viewset. `action_permissions` maps an action (and method) to the Django permission
    it needs instead of the model's default, e.g. posting a message on a ticket."""

    pagination_class = CursorPagination
    action_permissions: dict[str, dict[str, str | None]] = {}

    def required_permission(self, request: Request) -> tuple[bool, str | None]:
        by_method = self.action_permissions.get(self.action or "")
        if by_method is None or request.method not in by_method:
            return False, None
        return True, by_method[request.method]

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "user": self.request.user}
