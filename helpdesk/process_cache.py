"""Rules read on every ticket or message, kept in this process for a few seconds.

Cheaper than a shared cache (unpickling would cost more than the query); an edit reaches this
process at once through `forget()` and the others within `seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessCached(Generic[T]):
    def __init__(self, load: Callable[[], T], seconds: float = 30) -> None:
        self.load, self.seconds = load, seconds
        self._value: tuple[float, T] | None = None

    def __call__(self) -> T:
        cached = self._value
        if cached is not None and time.monotonic() - cached[0] < self.seconds:
            return cached[1]
        loaded = self.load()
        self._value = (time.monotonic(), loaded)
        return loaded

    def forget(self) -> None:
        """Read again on next use (this process; others within `seconds`)."""
        self._value = None


def process_cached(seconds: float = 30) -> Callable[[Callable[[], T]], ProcessCached[T]]:
    return lambda load: ProcessCached(load, seconds)
