"""Small helpers for the scoring page template."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def points_range(max_points: int) -> list[int]:
    return list(range(max_points + 1))


@register.filter
def picked(entered: dict, code: str) -> str:
    return entered.get(code, ("", ""))[0]


@register.filter
def comment(entered: dict, code: str) -> str:
    return entered.get(code, ("", ""))[1]
