from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from helpdesk import roles

from ..factories import UserFactory


@pytest.fixture
def make_inspectors(db):
    """make_inspectors("cal", 3): users cal0, cal1, cal2 in the QA Inspector role."""

    def make(prefix: str, count: int) -> list:
        group = Group.objects.get(name=roles.QA_INSPECTOR)
        people = [UserFactory(username=f"{prefix}{i}") for i in range(count)]
        for person in people:
            person.groups.add(group)
        return people

    return make
