"""The security tests share one small organisation (see world.py)."""

from __future__ import annotations

import pytest

from .world import World, build_world


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The personas' passwords would cost a second of PBKDF2 each; these tests never log in by password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(alice, lena, bob, iris, tom, ada, olga, integration) -> World:
    users = {"agent": alice.user, "lead": lena.user, "inspector": iris, "trainer": tom, "admin": ada,
             "key": integration[0].user, "norole": olga}
    return build_world(alice=alice, lena=lena, bob=bob, users=users, key=integration[1])
