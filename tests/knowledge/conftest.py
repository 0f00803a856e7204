from __future__ import annotations

import pytest
from django.utils import translation


@pytest.fixture
def english(settings):
    """For tests that read the admin's English messages: the default language is zh-hans."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
