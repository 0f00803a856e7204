"""The numbers of reports.summary() as a table: for the dashboard's tiles, CSV and XLSX files and
the emailed reports, so every place shows the same figures under the same names.

`rows(summary)` is the flat table: a header, then sections (a title row, then one row per
figure): metric, value, previous period, change vs previous, a year ago, change vs a year ago.
Values are raw: counts, rates as fractions 0-1, durations in seconds, averages; a change is a
fraction, `(now - before) / before`, None when before is 0 or None (docs/metrics.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from helpdesk.models import Channel

from .models import Category, SlaMetric

# Kinds of figure: how to show a value, and whether a rise is good news.
COUNT, RATE, SECONDS, SCORE = "count", "rate", "seconds", "score"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Line:
    label: str
    kind: str
    value: Any
    previous: Any
    year_ago: Any
    lower_is_better: bool | None = None  # None: neither way is good news (volume)

    @property
    def change_previous(self) -> float | None:
        return growth(self.value, self.previous)

    @property
    def change_year_ago(self) -> float | None:
        return growth(self.value, self.year_ago)

    def as_row(self) -> tuple[Any, ...]:
        return (self.label, self.value, self.previous, self.change_previous, self.year_ago, self.change_year_ago)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    lines: list[Line]


def growth(now: Any, before: Any) -> float | None:
    """As reports.summary()'s "change": rounded to four places, None against 0 or None."""
    if now is None or not before:
        return None
    return round((float(now) - float(before)) / float(before), 4)


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _headline_specs() -> list[tuple[str, str, tuple[str, ...], bool | None]]:
    """(label, kind, path into a period's numbers, lower is better) for every headline figure."""
    specs: list[tuple[str, str, tuple[str, ...], bool | None]] = [
        (_("Tickets created"), COUNT, ("tickets_created",), None),
        (_("Tickets solved"), COUNT, ("tickets_solved",), False),
        (_("Resolution rate"), RATE, ("resolution_rate",), False),
        (_("First-contact resolution"), RATE, ("fcr_rate",), False),
        (_("Reopen rate"), RATE, ("reopen_rate",), True),
    ]
    durations = [
        ("first_response_seconds", _("First response")),
        ("next_response_seconds", _("Next response")),
        ("resolution_seconds", _("Resolution time")),
        ("handle_seconds", _("Handle time")),
    ]
    statistics = [("mean", _("mean")), ("median", _("median")), ("p90", _("90th percentile"))]
    for key, name in durations:
        for stat, stat_name in statistics:
            specs.append((_("%(name)s, %(statistic)s (seconds)") % {"name": name, "statistic": stat_name},
                          SECONDS, (key, stat), True))
    for metric in SlaMetric:
        specs.append((_("SLA %(metric)s: attainment") % {"metric": metric.label}, RATE, ("sla", metric.value, "attainment"), False))
        specs.append((_("SLA %(metric)s: met") % {"metric": metric.label}, COUNT, ("sla", metric.value, "met"), False))
        specs.append((_("SLA %(metric)s: breached") % {"metric": metric.label}, COUNT, ("sla", metric.value, "breached"), True))
    for level in ("0", "1", "2", "3"):
        label = _("Escalation warnings") if level == "0" else _("Escalations, level %(level)s") % {"level": level}
        specs.append((label, COUNT, ("escalations", level), True))
    specs += [
        (_("Manual hand-overs"), COUNT, ("escalations", "manual"), True),
        (_("CSAT responses"), COUNT, ("csat", "responses"), False),
        (_("CSAT average stars"), SCORE, ("csat", "average"), False),
        (_("CSAT satisfied share (4-5 stars)"), RATE, ("csat", "satisfied_share"), False),
        (_("QA reviews"), COUNT, ("qa", "reviews"), False),
        (_("QA average score"), SCORE, ("qa", "average_score"), False),
    ]
    return specs


WEEKDAYS: Callable[[], list[str]] = lambda: [  # noqa: E731 - translated when called, not at import
    _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"),
]


def category_names(summary: dict[str, Any]) -> dict[str, str]:
    """The names of the categories the summary mentions, by code: one query."""
    codes = {row["code"] for row in summary["top_categories"]} | {row["code"] for row in summary["rising_categories"]}
    return dict(Category.objects.filter(code__in=codes).values_list("code", "name")) if codes else {}


def sections(summary: dict[str, Any], names: dict[str, str] | None = None) -> list[Section]:
    """Every figure of the summary, grouped; `names` are category names by code (looked up if None)."""
    if names is None:
        names = category_names(summary)
    previous, year_ago = summary["previous"], summary["year_ago"]
    headline = [
        Line(label, kind, _dig(summary, path), _dig(previous, path), _dig(year_ago, path), lower)
        for label, kind, path, lower in _headline_specs()
    ]
    channels = [
        Line(str(Channel(code).label) if code in Channel.values else code, COUNT, count,
             previous["channels"].get(code, 0), year_ago["channels"].get(code, 0))
        for code, count in summary["channels"].items()
    ]
    hourly = [
        Line(f"{hour:02d}:00", COUNT, count, previous["hourly"][hour], year_ago["hourly"][hour])
        for hour, count in enumerate(summary["hourly"])
    ]
    weekdays = [
        Line(day, COUNT, count, previous["weekdays"][index], year_ago["weekdays"][index])
        for index, (day, count) in enumerate(zip(WEEKDAYS(), summary["weekdays"], strict=True))
    ]
    top = [
        Line(names.get(row["code"], row["code"]), COUNT, row["count"], row["previous"], row["year_ago"])
        for row in summary["top_categories"]
    ]
    rising = [
        Line(names.get(row["code"], row["code"]), COUNT, row["count"], row["previous"], row["year_ago"])
        for row in summary["rising_categories"]
    ]
    return [
        Section("headline", _("Headline figures"), headline),
        Section("channels", _("Channels"), channels),
        Section("hourly", _("Tickets created by hour of day"), hourly),
        Section("weekdays", _("Tickets created by weekday"), weekdays),
        Section("top_categories", _("Top categories"), top),
        Section("rising_categories", _("Rising categories"), rising),
    ]


def header() -> tuple[str, ...]:
    return (
        pgettext("report column", "Metric"), pgettext("report column", "Value"),
        pgettext("report column", "Previous period"), pgettext("report column", "Change vs previous"),
        pgettext("report column", "Year ago"), pgettext("report column", "Change vs year ago"),
    )


def rows(summary: dict[str, Any], names: dict[str, str] | None = None) -> list[tuple[Any, ...]]:
    """The flat table: the header, then per section a title row (title, then five Nones) and its figures."""
    table: list[tuple[Any, ...]] = [header()]
    for section in sections(summary, names):
        table.append((section.title, None, None, None, None, None))
        table.extend(line.as_row() for line in section.lines)
    return table


def preamble(summary: dict[str, Any], scope: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """What the file covers: the range, its comparisons and the filters (label, shown value)."""
    def span(period: dict[str, str]) -> str:
        return f"{period['from']} – {period['to']}"

    return [
        (_("Period"), span(summary["period"])),
        (_("Previous period"), span(summary["previous"]["period"])),
        (_("Year ago"), span(summary["year_ago"]["period"])),
        *scope,
    ]


def safe_text(value: Any) -> Any:
    """A string a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(summary: dict[str, Any], *, names: dict[str, str] | None = None,
           scope: Sequence[tuple[str, str]] = ()) -> bytes:
    """UTF-8 with a byte order mark, so Excel reads the Chinese right; blank cells for None."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for label, shown in preamble(summary, scope):
        writer.writerow([safe_text(label), safe_text(shown)])
    writer.writerow([])
    for row in rows(summary, names):
        writer.writerow(["" if cell is None else safe_text(cell) for cell in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(summary: dict[str, Any], *, names: dict[str, str] | None = None,
            scope: Sequence[tuple[str, str]] = ()) -> bytes:
    """One sheet: the preamble, then the table; rates and changes formatted as percentages."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = _("Report")[:31]
    bold = Font(bold=True)

    def put(row: int, column: int, value: Any, number_format: str | None = None) -> None:
        cell = sheet.cell(row=row, column=column, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # text stays text: "=…" is never a formula
        elif number_format and value is not None:
            cell.number_format = number_format

    row = 1
    for label, shown in preamble(summary, scope):
        put(row, 1, label)
        put(row, 2, shown)
        row += 1
    row += 1
    for column, title in enumerate(header(), start=1):
        put(row, column, title)
        sheet.cell(row=row, column=column).font = bold
    for section in sections(summary, names):
        row += 1
        put(row, 1, section.title)
        sheet.cell(row=row, column=1).font = bold
        for line in section.lines:
            row += 1
            value_format = {RATE: "0.0%", SCORE: "0.00", SECONDS: "0", COUNT: "0"}[line.kind]
            for column, value in enumerate(line.as_row(), start=1):
                put(row, column, value, "0.0%" if column in (4, 6) else value_format)
    sheet.column_dimensions["A"].width = 48
    for letter in "BCDEF":
        sheet.column_dimensions[letter].width = 18
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- for the page -------------------------------------------------------------------------


def shown_value(value: Any, kind: str) -> str:
    """A figure as people read it: 81.3%, 1:02:03, 4.50; "—" for none."""
    if value is None:
        return "—"
    if kind == RATE:
        return f"{float(value) * 100:.1f}%"
    if kind == SECONDS:
        hours, rest = divmod(int(value), 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    if kind == SCORE:
        return f"{float(value):.2f}"
    return str(value)


def shown_change(change: float | None) -> str:
    if change is None:
        return "—"
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{arrow} {change * 100:+.1f}%"
