"""django-simple-history, configured for a hot write path.

Every ticket or customer created through the API writes an audit row; two library costs are
avoidable there: building the history manager class anew on each access (inspect.getmembers
on every save), and reading the many-to-many rows of a row that was only just inserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils.functional import cached_property
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords


class _HistoryDescriptor(HistoryDescriptor):
    @cached_property
    def _manager_class(self) -> type:
        return self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance: Any, owner: type) -> Any:
        return self._manager_class(self.model, instance)


class AuditedRecords(HistoricalRecords):
    """HistoricalRecords whose manager class is built once per model."""

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
