from __future__ import annotations

import pytest

from helpdesk.extensions import Registry, task_named


def test_it_keeps_registrations_in_order_and_once():
    registry: Registry[str] = Registry("names")
    assert registry.register("b") == "b"
    registry.register("a")
    registry.register("b")  # ready() run again
    assert list(registry) == ["b", "a"]
    assert len(registry) == 2


def test_it_finds_a_task_by_its_registered_name():
    task = task_named("helpdesk.deliver_webhook")
    assert task.name == "helpdesk.deliver_webhook"


def test_it_names_the_missing_task():
    with pytest.raises(LookupError, match="tickets.no_such_task"):
        task_named("tickets.no_such_task")
