"""Bar charts as inline SVG, drawn on the server: no JavaScript, no library, nothing fetched.

Each chart is a <svg role="img"> labelled by its <title> and <desc>, and every bar carries its
value as text, so a screen reader (or a printout) gets the numbers, not just the shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

BAR_GAP = 4
LABEL_SPACE = 18  # below columns, for the label; above them, for the value
ROW_HEIGHT = 22
NAME_WIDTH = 150  # left of horizontal bars, for the label
VALUE_SPACE = 48  # right of horizontal bars, for the value


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str = "",
    horizontal: bool = False,
    width: int = 640,
    height: int = 200,
) -> SafeString:
    """An SVG bar chart of (label, value) pairs; bar lengths are proportional to the values
    (the largest fills the plot; all zero draws no bars). Negative values are drawn as zero."""
    values = [max(float(value or 0), 0.0) for _, value in items]
    top = max(values, default=0.0)
    if horizontal:
        height = ROW_HEIGHT * max(len(items), 1) + BAR_GAP
        bars = _rows(items, values, top, width)
    else:
        bars = _columns(items, values, top, width, height)
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-labelledby="{id}-title {id}-desc">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{bars}</svg>',
        w=width, h=height, id=chart_id, title=title,
        desc=desc or "; ".join(f"{label}: {_number(value)}" for label, value in items), bars=bars,
    )


def _columns(items: Sequence[tuple[str, float]], values: list[float], top: float, width: int, height: int) -> SafeString:
    plot = height - 2 * LABEL_SPACE
    step = width / max(len(items), 1)
    parts = []
    for index, ((label, raw), value) in enumerate(zip(items, values, strict=True)):
        length = round(plot * value / top, 1) if top else 0
        x = round(index * step + BAR_GAP / 2, 1)
        middle = round(index * step + step / 2, 1)
        parts.append(format_html(
            '<g><rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>'
            '<text x="{}" y="{}" text-anchor="middle" class="value">{}</text>'
            '<text x="{}" y="{}" text-anchor="middle" class="label">{}</text></g>',
            x, round(LABEL_SPACE + plot - length, 1), round(step - BAR_GAP, 1), length, label, _number(raw),
            middle, round(LABEL_SPACE + plot - length - 4, 1), _number(raw),
            middle, height - 4, label,
        ))
    return mark_safe("".join(parts))  # noqa: S308 - every part went through format_html


def _rows(items: Sequence[tuple[str, float]], values: list[float], top: float, width: int) -> SafeString:
    plot = width - NAME_WIDTH - VALUE_SPACE
    return format_html_join(
        "",
        '<g><text x="{}" y="{}" text-anchor="end" class="label">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" class="value">{}</text></g>',
        (
            (
                NAME_WIDTH - 6, index * ROW_HEIGHT + 16, label,
                NAME_WIDTH, index * ROW_HEIGHT + BAR_GAP, length, ROW_HEIGHT - BAR_GAP, label, _number(raw),
                NAME_WIDTH + length + 4, index * ROW_HEIGHT + 16, _number(raw),
            )
            for index, ((label, raw), value) in enumerate(zip(items, values, strict=True))
            for length in [round(plot * value / top, 1) if top else 0]
        ),
    )
