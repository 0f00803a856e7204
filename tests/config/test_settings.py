from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.security import refuse_insecure_key


def test_serving_without_a_secret_key_is_refused_outside_debug(settings):
    settings.DEBUG, settings.TESTING = False, False
    settings.SECRET_KEY = settings.INSECURE_KEY_PREFIX + "x" * 50
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        refuse_insecure_key()
    settings.SECRET_KEY = "a-real-and-long-secret-key-" + "y" * 40
    refuse_insecure_key()


def test_the_development_key_is_flagged_by_check_deploy(settings):
    from django.core.checks.security.base import check_secret_key

    settings.SECRET_KEY = settings.INSECURE_KEY_PREFIX + "x" * 50
    assert [w.id for w in check_secret_key(None)] == ["security.W009"]
