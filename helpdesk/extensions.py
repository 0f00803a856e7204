"""Extension points: registries the core declares and the apps above it fill in `AppConfig.ready()`.

helpdesk/ imports no app above it. Where the core needs what only an app knows (who may see a
customer, what a privacy export holds, how an audit reason reads, what follows a domain event),
it declares a `Registry` beside the code that asks, and each app registers its part in its
`AppConfig.ready()`. No signals and no discovery: every entry is a `.register(...)` call in an
`apps.py`, so `grep -rn "register(" */apps.py` lists them all, in the order they run.
"""

from __future__ import annotations

from collections.abc import Iterator

from celery import current_app
from celery.app.task import Task


class Registry[T]:
    """An ordered list of extensions of one kind, filled once at start-up.

    `register` keeps the first registration of an item (Django may run `ready()` twice in a
    test run) and returns the item, so it also works as a decorator.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: list[T] = []

    def register(self, item: T) -> T:
        if item not in self._items:
            self._items.append(item)
        return item

    def __iter__(self) -> Iterator[T]:
        return iter(tuple(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<Registry {self.name}: {len(self._items)}>"


def task_named(name: str) -> Task:
    """The Celery task registered as `name` (its `@shared_task(name=...)`).

    A service that queues a task cannot import the task's module when that module imports the
    service (tasks sit above the services they call). It names the task instead; every app
    imports its task modules in `AppConfig.ready()`, so the name is known in every process,
    web included, and `apply_async` behaves as the task's own (eager mode too).
    """
    try:
        return current_app.tasks[name]
    except KeyError:
        raise LookupError(f"No Celery task named {name!r}: is its module imported in its app's ready()?") from None
