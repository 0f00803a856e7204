"""Input fields that keep out-of-range ids and instants away from the database (a 400 naming
the field, never a 500), each described in the schema as strictly as it is checked."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_ID = 2**63 - 1
ID_REGEX = r"[0-9]{1,18}"
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _years_regex(low: int, high: int) -> str:
    """The years low..high as a regex alternation, whole decades as `201[0-9]`."""
    parts, year = [], low
    while year <= high:
        if year % 10 == 0 and year + 9 <= high:
            parts.append(f"{year // 10}[0-9]")
            year += 10
        else:
            parts.append(str(year))
            year += 1
    return "(?:" + "|".join(parts) + ")"


def _year_range() -> tuple[int, int]:
    return settings.API_MIN_YEAR, settings.API_MAX_YEAR


_DAY = r"(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
YEARS = _years_regex(*_year_range())
DATE_SCHEMA = {"type": "string", "format": "date", "pattern": f"^{YEARS}-{_DAY}$"}
DATETIME_SCHEMA = {"type": "string", "format": "date-time", "pattern": f"^{YEARS}-{_DAY}T{_CLOCK}{_OFFSET}$"}


def _out_of_range() -> str:
    low, high = _year_range()
    return _("Give a date between the years %(low)d and %(high)d.") % {"low": low, "high": high}


def check_year(value: date | datetime) -> None:
    """An instant or day outside API_MIN_YEAR..API_MAX_YEAR is a typo or a probe: in year 619 the
    zone's offset is its local mean time (+08:05:43), which no client reads back."""
    low, high = _year_range()
    # The year as written first: converting year 1 or 9999 to UTC may overflow.
    inside = low <= value.year <= high
    if inside and isinstance(value, datetime) and value.tzinfo is not None:
        inside = low <= value.astimezone(UTC).year <= high
    if not inside:
        raise serializers.ValidationError(_out_of_range(), code="date_range")


class TextField(serializers.CharField):
    """Text that must be sent as a JSON string: DRF's CharField takes 5 and 1.5 too, which the
    schema (type string) calls invalid."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(DATETIME_SCHEMA)
class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant in API_MIN_YEAR..API_MAX_YEAR."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        check_year(parsed)
        return parsed


@extend_schema_field(DATE_SCHEMA)
class DayField(serializers.DateField):
    """A day, YYYY-MM-DD, in API_MIN_YEAR..API_MAX_YEAR."""

    def to_internal_value(self, value: Any) -> date:
        parsed = super().to_internal_value(value)
        check_year(parsed)
        return parsed


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class PrimaryKeyField(serializers.PrimaryKeyRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("pk_field", id_field())
        super().__init__(**kwargs)


@extend_schema_field(ID_SCHEMA)
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
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if parsed is None:
            return None
        try:
            check_year(parsed)
        except serializers.ValidationError:
            raise forms.ValidationError(_out_of_range(), code="date_range") from None
        return parsed.astimezone(UTC)


@extend_schema_field(DATETIME_SCHEMA)
class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeFormField


class DayFormField(forms.DateField):
    def to_python(self, value: Any) -> date | None:
        parsed = super().to_python(value)
        if parsed is not None:
            try:
                check_year(parsed)
            except serializers.ValidationError:
                raise forms.ValidationError(_out_of_range(), code="date_range") from None
        return parsed


@extend_schema_field(DATE_SCHEMA)
class DayFilter(django_filters.DateFilter):
    field_class = DayFormField
