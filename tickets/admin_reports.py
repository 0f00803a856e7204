"""The operations dashboard in the admin."""

from __future__ import annotations

from django.urls import URLPattern


def report_urls() -> list[URLPattern]:
    return []
