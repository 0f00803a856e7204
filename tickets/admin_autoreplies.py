"""Admin for autoreplies."""

from __future__ import annotations
