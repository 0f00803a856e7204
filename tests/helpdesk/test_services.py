from __future__ import annotations

import pytest
import time_machine

from helpdesk.errors import DomainError
from helpdesk.services import set_presence

pytestmark = pytest.mark.django_db


def test_setting_presence_records_when_it_changed_and_a_repeat_changes_nothing(alice):
    with time_machine.travel("2026-11-23 09:00+08:00", tick=False):
        set_presence(agent=alice, presence="online")
    changed_at = alice.presence_changed_at
    with time_machine.travel("2026-11-23 10:00+08:00", tick=False):
        set_presence(agent=alice, presence="online")
    alice.refresh_from_db()
    assert alice.presence == "online" and alice.presence_changed_at == changed_at


def test_an_unknown_presence_is_refused_with_its_field(alice):
    with pytest.raises(DomainError) as error:
        set_presence(agent=alice, presence="sleeping")
    assert error.value.field == "presence"
