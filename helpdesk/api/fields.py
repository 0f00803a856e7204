"""Input fields that keep out-of-range ids away from the database (a 400, never a 500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from rest_framework import serializers

MAX_ID = 2**63 - 1
ID_REGEX = r"[0-9]{1,18}"


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class PrimaryKeyField(serializers.PrimaryKeyRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("pk_field", id_field())
        super().__init__(**kwargs)


class IdFilter(django_filters.NumberFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdConverter:
    """<id:…> in URLs: a positive id that fits a 64-bit column."""

    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class UtcDateTimeFormField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 instant in UTC: PostgreSQL refuses offsets past ±15:59 that Python allows."""

    def to_python(self, value: Any) -> datetime | None:
        try:
            parsed = super().to_python(value)
            return parsed.astimezone(UTC) if parsed is not None else None
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeFormField
