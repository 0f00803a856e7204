"""Admin for live."""

from __future__ import annotations
