"""The ticket's audit trail as people read it: who changed which field, from what to what."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from helpdesk.models import Agent, Team

from .models import Category, Ticket

TRACKED = ["subject", "status", "priority", "channel", "category_id", "team_id", "assignee_id"]
LABELLED = {"status": Ticket.Status, "priority": Ticket.Priority}
# Services store reason codes, never translated text; they are labelled when shown.
REASONS = {
    "auto_close": _("closed automatically after being solved"),
    "message:customer": _("the customer wrote"),
    "message:agent": _("an agent replied"),
    "message:system": _("system message"),
}
RELATED = {"category_id": Category, "team_id": Team, "assignee_id": Agent}


def recent_changes(ticket: Ticket, limit: int = 20) -> list[dict[str, Any]]:
    """The last `limit` audit rows of the ticket with their field changes, in 4 queries."""
    rows = list(ticket.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    names: dict[str, dict[Any, str]] = {}
    for field, model in RELATED.items():
        ids = {getattr(row, field) for row in rows} - {None}
        names[field] = {obj.pk: str(obj) for obj in model.objects.filter(pk__in=ids)} if ids else {}

    def shown(field: str, value: Any) -> str:
        if value in (None, ""):
            return "—"
        if field in LABELLED:
            return str(LABELLED[field](value).label) if value in LABELLED[field].values else value
        if field in RELATED:
            return names[field].get(value, f"#{value}")
        return str(value)

    changes = []
    for index, row in enumerate(rows[:limit]):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        fields = []
        for field in TRACKED:
            before = getattr(previous, field) if previous is not None else None
            after = getattr(row, field)
            if previous is not None and before != after:
                verbose = Ticket._meta.get_field(field.removesuffix("_id")).verbose_name
                fields.append({"field": verbose, "before": shown(field, before), "after": shown(field, after)})
        changes.append(
            {
                "at": row.history_date,
                "user": row.history_user,
                "type": row.get_history_type_display(),
                "reason": REASONS.get(row.history_change_reason or "", row.history_change_reason or ""),
                "fields": fields,
            }
        )
    return changes
