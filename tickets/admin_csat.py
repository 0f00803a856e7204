"""Admin for csat."""

from __future__ import annotations
