"""Admin for routing."""

from __future__ import annotations
