"""django-simple-history, configured for a hot write path.

Every ticket or customer created through the API writes an audit row; two library costs are
avoidable there: building the history manager class anew on each access (inspect.getmembers
on every save), and reading the many-to-many rows of a row that was only just inserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from . import observability


class KeyAttributed(models.Model):
    """Base of every history table: the API key a change came through, beside its user.

    A key may act as a staff member's own user, so the user alone cannot tell a person's click
    in the admin from their integration's call. No constraint and no cascade: deleting a key
    keeps the record of what it did (its id stays in the rows).
    """

    history_api_key = models.ForeignKey(
        "helpdesk.ApiKey", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", verbose_name=_("API key"),
    )

    class Meta:
        abstract = True


def _attribute_key(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    """Stamp the key of the request being served (known once DRF authenticated it)."""
    history_instance.history_api_key_id = observability.identity(observability.current().request)[1]


pre_create_historical_record.connect(_attribute_key, dispatch_uid="helpdesk.history.attribute_key")


def bulk_attribution() -> dict[str, Any]:
    """Keyword arguments for simple-history's bulk helpers, which send no signal: the user and
    API key of the request being served, if any."""
    request = observability.current().request
    user_id, api_key_id = observability.identity(request)
    return {
        "default_user": request.user if user_id is not None else None,
        "custom_historical_attrs": {"history_api_key_id": api_key_id},
    }


class _HistoryDescriptor(HistoryDescriptor):
    @cached_property
    def _manager_class(self) -> type:
        return self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance: Any, owner: type) -> Any:
        return self._manager_class(self.model, instance)


class AuditedRecords(HistoricalRecords):
    """HistoricalRecords whose manager class is built once per model, with the API key column."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("bases", [KeyAttributed])
        super().__init__(*args, **kwargs)

    def finalize(self, sender: type, **kwargs: Any) -> None:
        super().finalize(sender, **kwargs)
        sender._audited_records = self  # for record_creation()
        descriptor = sender.__dict__.get(self.manager_name)
        if type(descriptor) is HistoryDescriptor:
            setattr(
                sender, self.manager_name,
                _HistoryDescriptor(descriptor.model, manager=descriptor.manager_class, queryset=descriptor.queryset_class),
            )

    def create_historical_record_m2ms(self, history_instance: Any, instance: Any) -> None:
        if history_instance.history_type == "+" and not getattr(instance, "_links_before_history", False):
            return  # a row just inserted has no many-to-many links yet: nothing to snapshot
        super().create_historical_record_m2ms(history_instance, instance)


@contextmanager
def unrecorded(instance: Any) -> Iterator[None]:
    """Saves and many-to-many changes inside write no history rows: the caller records the
    finished change once (record_creation, or its next save)."""
    instance.skip_history_when_saving = True
    try:
        yield
    finally:
        del instance.skip_history_when_saving


def record_creation(instance: Any, *, user: Any, reason: str) -> None:
    """Write the creation row of an instance inserted `unrecorded`, with the many-to-many links
    set since: its first version has them."""
    instance._history_user = user
    instance._change_reason = reason
    instance._links_before_history = True
    type(instance)._audited_records.create_historical_record(instance, "+")
