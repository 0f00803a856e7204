"""The weekly and monthly operations reports by email (issue 8).

A subscription names its recipients, team (or all) and language. Once a day beat runs
`send_due_reports`: each active subscription whose due period (the week or month before
today, in TIME_ZONE) is not yet its `last_period_sent` gets one email: the numbers of
tickets/reports.py as plain HTML tables, a plain-text alternative and a CSV. A period is
claimed by setting `last_period_sent` under a row lock with a conditional UPDATE, and the
email leaves after that commits: a retried, doubled or overlapping run never sends a
period twice (at most once: a mail server that refuses it after the commit is logged, and
the admin action "Send the last period now" sends it by hand).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dates import WEEKDAYS
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from helpdesk.models import Channel

from . import reports
from .models import Category, ReportSubscription, SlaMetric

logger = logging.getLogger(__name__)

Frequency = ReportSubscription.Frequency


# --- which period --------------------------------------------------------------------


def due_period(frequency: str, today: date) -> tuple[date, date]:
    """The period a report sent on `today` covers, both days included: Monday to Sunday of
    the week before, or the whole month before."""
    if frequency == Frequency.WEEKLY:
        start = today - timedelta(days=today.weekday() + 7)
        return start, start + timedelta(days=6)
    if frequency == Frequency.MONTHLY:
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    raise ValueError(f"unknown report frequency {frequency!r}")


def recipient_addresses(text: str) -> list[str]:
    """The email addresses of a subscription: one a line, blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- sending ---------------------------------------------------------------------------


def send_due_reports(today: date | None = None) -> int:
    """Send every report that is due on `today` (default: today in TIME_ZONE); returns how many
    were sent. Running it again, or twice at once, sends nothing more."""
    today = today or timezone.localdate()
    sent = 0
    for frequency in Frequency.values:
        start, end = due_period(frequency, today)
        pending = (
            ReportSubscription.objects.filter(is_active=True, frequency=frequency)
            .filter(_not_sent(start))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for subscription_id in pending:
            sent += send_period_report(subscription_id=subscription_id, start=start, end=end)
    return sent


def _not_sent(start: date) -> Q:
    return Q(last_period_sent__isnull=True) | ~Q(last_period_sent=start)


@transaction.atomic
def send_period_report(*, subscription_id: int, start: date, end: date) -> bool:
    """Send one subscription's report for the period starting `start`, unless it was sent.

    The row is locked (skip_locked: another worker sending it is left alone) and claimed with a
    conditional UPDATE of `last_period_sent`; the email is queued for after the commit, so a
    rollback sends nothing and a second run finds the period taken. Returns whether it sent.
    """
    subscription = (
        ReportSubscription.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("team")
        .filter(_not_sent(start), pk=subscription_id, is_active=True)
        .first()
    )
    if subscription is None:  # sent already, switched off, or another worker holds it
        return False
    message = build_message(subscription=subscription, start=start, end=end)
    claimed = (
        ReportSubscription.objects.filter(_not_sent(start), pk=subscription.pk, is_active=True)
        .update(last_period_sent=start)
    )
    if claimed != 1:  # another run got there first (SQLite has no row locks, only this check)
        return False
    transaction.on_commit(lambda: _deliver(message, subscription_id, start), robust=True)
    return True


def _deliver(message: EmailMultiAlternatives, subscription_id: int, start: date) -> None:
    try:
        message.send(fail_silently=False)
    except Exception:
        logger.exception("report %s for the period from %s was recorded but not sent", subscription_id, start)
        raise


def send_last_period_now(*, subscription: ReportSubscription, today: date | None = None) -> int:
    """Send the last finished period's report at once, to test a subscription; `last_period_sent`
    is left alone, so the scheduled email still goes. Returns how many messages were sent."""
    start, end = due_period(subscription.frequency, today or timezone.localdate())
    return build_message(subscription=subscription, start=start, end=end).send(fail_silently=False)


# --- the email ---------------------------------------------------------------------------


def build_message(*, subscription: ReportSubscription, start: date, end: date) -> EmailMultiAlternatives:
    """The report email of one period: HTML, plain text and CSV, in the subscription's language."""
    from .report_exports import to_csv  # a sibling module of the dashboard's exports

    data = reports.summary(start=start, end=end, filters=reports.Filters(team=subscription.team_id))
    with translation.override(subscription.language):
        context = report_context(subscription=subscription, data=data, start=start, end=end)
        text = render_to_string("tickets/report_email.txt", context)
        html = render_to_string("tickets/report_email.html", context)
        attachment = to_csv(data)  # its labels in the subscription's language too
    message = EmailMultiAlternatives(
        context["subject"], text, settings.DEFAULT_FROM_EMAIL, recipient_addresses(subscription.recipients)
    )
    message.attach_alternative(html, "text/html")
    scope = f"-team-{subscription.team_id}" if subscription.team_id else ""
    message.attach(f"report-{start.isoformat()}-{end.isoformat()}{scope}.csv", attachment, "text/csv")
    return message


def subject(frequency: str, start: date, end: date) -> str:
    """"Weekly report 16-22 Nov 2026" / "Monthly report November 2026", in the active language."""
    if frequency == Frequency.MONTHLY:
        # Translators: a date format (Django's date template filter) for the month in a monthly report's subject.
        month = date_format(start, pgettext("report subject month", "F Y"))
        return _("Monthly report %(month)s") % {"month": month}
    if (start.year, start.month) == (end.year, end.month):
        # Translators: a date format for the first day of a report's range when it ends in the same month.
        first = pgettext("report range start, same month", "j")
    elif start.year == end.year:
        # Translators: a date format for the first day of a report's range when it ends in the same year.
        first = pgettext("report range start, same year", "j M")
    else:
        # Translators: a date format for the first day of a report's range that ends the next year.
        first = pgettext("report range start, other year", "j M Y")
    # Translators: a date format for the last day of a report's range.
    last = pgettext("report range end", "j M Y")
    return _("Weekly report %(start)s-%(end)s") % {"start": date_format(start, first), "end": date_format(end, last)}


def report_context(*, subscription: ReportSubscription, data: dict[str, Any], start: date, end: date) -> dict[str, Any]:
    """What the templates show, formatted in the active language: strings only, no logic left."""
    previous, year_ago = data["previous"], data["year_ago"]
    change_previous, change_year = data["change"]["previous"], data["change"]["year_ago"]
    headlines = []
    for label, read, show, change_key in _HEADLINES:
        headlines.append({
            "label": label(),
            "value": show(read(data)),
            "previous": show(read(previous)),
            "change_previous": percent_change(change_previous.get(change_key)) if change_key else "",
            "year_ago": show(read(year_ago)),
            "change_year_ago": percent_change(change_year.get(change_key)) if change_key else "",
        })
    names = _category_names({row["code"] for row in data["top_categories"] + data["rising_categories"]})
    return {
        "subject": subject(subscription.frequency, start, end),
        "language": translation.get_language(),
        "name": subscription.name,
        "scope": subscription.team.name if subscription.team_id else _("All teams"),
        "period": _("%(start)s to %(end)s") % {"start": start.isoformat(), "end": end.isoformat()},
        "previous_period": _("%(start)s to %(end)s") % {"start": previous["period"]["from"], "end": previous["period"]["to"]},
        "year_ago_period": _("%(start)s to %(end)s") % {"start": year_ago["period"]["from"], "end": year_ago["period"]["to"]},
        "headlines": headlines,
        "sla": [
            {"label": SlaMetric(metric).label, "met": row["met"], "breached": row["breached"],
             "attainment": percent(row["attainment"])}
            for metric, row in data["sla"].items()
        ],
        "escalations": [
            {"label": _("Manual hand-over") if level == "manual" else _("Level %(level)s") % {"level": level}, "count": n}
            for level, n in data["escalations"].items()
        ],
        "hourly": [{"label": f"{hour:02d}:00-{hour:02d}:59", "count": n} for hour, n in enumerate(data["hourly"])],
        "weekdays": [{"label": str(WEEKDAYS[day]), "count": n} for day, n in enumerate(data["weekdays"])],
        "channels": [
            {"label": str(Channel(code).label) if code in Channel.values else code, "count": n}
            for code, n in data["channels"].items()
        ],
        "top_categories": [
            {"code": row["code"], "label": names.get(row["code"], row["code"]), "count": row["count"]}
            for row in data["top_categories"]
        ],
        "rising_categories": [
            {"code": row["code"], "label": names.get(row["code"], row["code"]), "count": row["count"],
             "previous": row["previous"], "change": f"+{row['change']}"}
            for row in data["rising_categories"]
        ],
    }


def _category_names(codes: set[str]) -> dict[str, str]:
    english = (translation.get_language() or "").startswith("en")
    return {
        code: (name_en or name) if english else name
        for code, name, name_en in Category.objects.filter(code__in=codes).values_list("code", "name", "name_en")
    }


# --- formatting --------------------------------------------------------------------------

NONE = "—"


def count(value: Any) -> str:
    return NONE if value is None else str(value)


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal: 0.8125 → "81.3%"."""
    return NONE if value is None else f"{value * 100:.1f}%"


def percent_change(value: float | None) -> str:
    """A change as a signed percentage: 0.125 → "+12.5%", −0.03 → "-3.0%"."""
    return NONE if value is None else f"{value * 100:+.1f}%"


def decimal(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def duration(seconds: int | None) -> str:
    """Calendar seconds for a reader: "45 s", "12 min 5 s", "26 h 03 min"."""
    if seconds is None:
        return NONE
    if seconds < 60:
        return _("%(seconds)d s") % {"seconds": seconds}
    if seconds < 3600:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": seconds // 60, "seconds": seconds % 60}
    return _("%(hours)d h %(minutes)02d min") % {"hours": seconds // 3600, "minutes": seconds % 3600 // 60}


# (label, how to read the number from one period's numbers, how to show it, key in "change")
_HEADLINES: list[tuple[Any, Any, Any, str | None]] = [
    (lambda: _("Tickets created"), lambda d: d["tickets_created"], count, "tickets_created"),
    (lambda: _("Tickets solved"), lambda d: d["tickets_solved"], count, "tickets_solved"),
    (lambda: _("Resolution rate"), lambda d: d["resolution_rate"], percent, "resolution_rate"),
    (lambda: _("First-contact resolution"), lambda d: d["fcr_rate"], percent, "fcr_rate"),
    (lambda: _("Reopen rate"), lambda d: d["reopen_rate"], percent, "reopen_rate"),
    (lambda: _("First response, mean"), lambda d: d["first_response_seconds"]["mean"], duration, "first_response_mean"),
    (lambda: _("First response, median"), lambda d: d["first_response_seconds"]["median"], duration, None),
    (lambda: _("First response, p90"), lambda d: d["first_response_seconds"]["p90"], duration, None),
    (lambda: _("Next response, mean"), lambda d: d["next_response_seconds"]["mean"], duration, None),
    (lambda: _("Resolution time, mean"), lambda d: d["resolution_seconds"]["mean"], duration, None),
    (lambda: _("Resolution time, median"), lambda d: d["resolution_seconds"]["median"], duration, None),
    (lambda: _("Resolution time, p90"), lambda d: d["resolution_seconds"]["p90"], duration, None),
    (lambda: _("Handle time, mean"), lambda d: d["handle_seconds"]["mean"], duration, None),
    (lambda: _("CSAT responses"), lambda d: d["csat"]["responses"], count, None),
    (lambda: _("CSAT average stars"), lambda d: d["csat"]["average"], decimal, "csat_average"),
    (lambda: _("CSAT share of 4-5 stars"), lambda d: d["csat"]["satisfied_share"], percent, None),
    (lambda: _("QA reviews"), lambda d: d["qa"]["reviews"], count, None),
    (lambda: _("QA average score"), lambda d: d["qa"]["average_score"], decimal, None),
]
