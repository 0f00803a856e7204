"""Personas: who is who in the tests, so permission tests read like prose.

alice is an agent on the support team; lena leads it; bob is an agent on the billing team;
iris is a QA inspector; tom a trainer; ada an administrator; olga a staff user with no role.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from helpdesk import roles
from helpdesk.models import Agent, Team

from .factories import AgentFactory, TeamFactory, UserFactory


def _user(username: str, role: str | None) -> User:
    user = UserFactory(username=username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def support_team(db) -> Team:
    return TeamFactory(name="Support")


@pytest.fixture
def billing_team(db) -> Team:
    return TeamFactory(name="Billing")


@pytest.fixture
def alice(support_team) -> Agent:
    return AgentFactory(user=_user("alice", roles.AGENT), display_name="Alice", teams=[support_team])


@pytest.fixture
def lena(support_team) -> Agent:
    return AgentFactory(user=_user("lena", roles.TEAM_LEAD), display_name="Lena", teams=[support_team])


@pytest.fixture
def bob(billing_team) -> Agent:
    return AgentFactory(user=_user("bob", roles.AGENT), display_name="Bob", teams=[billing_team])


@pytest.fixture
def iris(db) -> User:
    return _user("iris", roles.QA_INSPECTOR)


@pytest.fixture
def tom(db) -> User:
    return _user("tom", roles.TRAINER)


@pytest.fixture
def ada(db) -> User:
    return _user("ada", roles.ADMINISTRATOR)


@pytest.fixture
def olga(db) -> User:
    return _user("olga", None)


@pytest.fixture
def integration(db):
    """A write key of an integration (the shop), acting as a user in the API Client role."""
    from helpdesk.api_keys import create_api_key

    api_key, plain = create_api_key(name="shop", scope="write")
    return api_key, plain


@pytest.fixture
def api(integration):
    """A DRF client authenticated with the integration's key."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {integration[1]}")
    return client


@pytest.fixture
def anonymous_api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def english(settings):
    """For tests that read English messages (admin, API, commands): the default language is zh-hans."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def auto_replies_off():
    """For a test that counts exactly the messages and webhook events it writes: the shipped
    automatic replies (on out of the box, and dependent on the hour) are deactivated, as an
    administrator would in the admin. Everything else runs with them on."""
    from tickets import autoreplies
    from tickets.models import AutoReplyRule

    AutoReplyRule.objects.update(is_active=False)
    autoreplies.forget_rules()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache, SLA policies in the process; ids repeat across tests."""
    from django.core.cache import cache

    from tickets import autoreplies, routing, sla

    cache.clear()
    sla.forget_policies()
    routing.forget_rules()
    autoreplies.forget_rules()
    yield
    cache.clear()
    sla.forget_policies()
    routing.forget_rules()
    autoreplies.forget_rules()


@pytest.fixture(autouse=True)
def _results_may_be_awaited():
    """An in-process worker (celery.contrib.testing.worker) marks the process as inside a task
    when its pool starts again after a broker outage, and .get() then refuses in later tests."""
    yield
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
