"""What every API view shares: idempotent POSTs, cursor pagination, per-action permissions."""

from __future__ import annotations

from typing import Any

from rest_framework import pagination, viewsets
from rest_framework.request import Request

from .idempotency import IdempotentPostMixin


class CursorPagination(pagination.CursorPagination):
    """Stable pages over any number of rows: each page is one index range, never an OFFSET."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-created_at"


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
