"""An article's versions as people read them: who changed what, the body line by line.

simple-history's own diff reads the many-to-many rows of every version again (queries per row)
and cuts long texts to 100 characters; this reads the page of versions with their tags and
ticket categories in a fixed number of queries and shows the body's changed lines.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from tickets.models import Category

from .models import Article, Audience, KbCategory

VERSIONS_SHOWN = 50
# Services store reasons as codes (never translated text); they are labelled when shown.
REASONS = {
    "created": _("created"),
    "edited": _("edited"),
    "sent for review": _("sent for review"),
    "published": _("published"),
    "sent back": _("sent back"),
    "archived": _("archived"),
    "restored": _("restored"),
    "imported": _("imported"),
}
SCALARS = ["title", "slug", "status", "language", "audience", "category_id", "owner_id", "review_due_on", "review_note"]
LABELLED = {"status": dict(Article.Status.choices), "audience": dict(Audience.choices)}


def reason_label(reason: str | None) -> str:
    reason = reason or ""
    if reason.startswith("reverted to version "):
        return str(_("reverted to version %s")) % reason.removeprefix("reverted to version ")
    return str(REASONS.get(reason, reason))


def body_diff(before: str, after: str, context: int = 1) -> list[tuple[str, str]]:
    """The changed lines of the body with a line of context: ("del" | "ins" | "same" | "gap", text)."""
    lines: list[tuple[str, str]] = []
    diff = difflib.unified_diff((before or "").splitlines(), (after or "").splitlines(), n=context, lineterm="")
    for line in list(diff)[2:]:  # skip the ---/+++ header
        if line.startswith("@@"):
            lines.append(("gap", "…"))
        elif line.startswith("-"):
            lines.append(("del", line[1:]))
        elif line.startswith("+"):
            lines.append(("ins", line[1:]))
        else:
            lines.append(("same", line[1:]))
    return lines[1:] if lines and lines[0][0] == "gap" else lines


def article_versions(article: Article, *, limit: int = VERSIONS_SHOWN) -> list[dict[str, Any]]:
    """The last `limit` versions, newest first, each with its changes from the one before."""
    rows = list(
        article.history.select_related("history_user")
        .prefetch_related("historicalarticle_tags_set__tag", "historicalarticle_ticket_categories_set")
        .order_by("-history_date", "-history_id")[: limit + 1]
    )
    category_ids = {row.category_id for row in rows} - {None}
    owner_ids = {row.owner_id for row in rows} - {None}
    ticket_category_ids = {
        link.category_id for row in rows for link in row.historicalarticle_ticket_categories_set.all()
    }
    names: dict[str, dict[Any, str]] = {
        "category_id": {c.pk: c.name for c in KbCategory.objects.filter(pk__in=category_ids)} if category_ids else {},
        "owner_id": (
            {u.pk: u.get_username() for u in get_user_model().objects.filter(pk__in=owner_ids)} if owner_ids else {}
        ),
    }
    ticket_categories = (
        {c.pk: str(c) for c in Category.objects.filter(pk__in=ticket_category_ids)} if ticket_category_ids else {}
    )

    def shown(field: str, value: Any) -> str:
        if value in (None, ""):
            return "—"
        if field in LABELLED:
            return str(LABELLED[field].get(value, value))
        if field in names:
            return names[field].get(value, f"#{value}")
        return str(value)

    def relations(row: Any) -> dict[str, str]:
        tags = sorted(link.tag.name for link in row.historicalarticle_tags_set.all() if link.tag is not None)
        categories = sorted(
            ticket_categories.get(link.category_id, f"#{link.category_id}")
            for link in row.historicalarticle_ticket_categories_set.all()
        )
        return {"tags": ", ".join(tags) or "—", "ticket_categories": ", ".join(categories) or "—"}

    versions = []
    for index, row in enumerate(rows[:limit]):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        changes = []
        if previous is not None:
            for field in SCALARS:
                before, after = getattr(previous, field), getattr(row, field)
                if before != after:
                    label = Article._meta.get_field(field.removesuffix("_id")).verbose_name
                    changes.append({"field": label, "before": shown(field, before), "after": shown(field, after)})
            now_related, then_related = relations(row), relations(previous)
            for field in ("tags", "ticket_categories"):
                if now_related[field] != then_related[field]:
                    label = Article._meta.get_field(field).verbose_name
                    changes.append({"field": label, "before": then_related[field], "after": now_related[field]})
        versions.append(
            {
                "history_id": row.history_id,
                "at": row.history_date,
                "user": row.history_user,
                "type": row.get_history_type_display(),
                "reason": reason_label(row.history_change_reason),
                "status": shown("status", row.status),
                "title": row.title,
                "changes": changes,
                "body_diff": body_diff(previous.body, row.body) if previous is not None and previous.body != row.body else [],
                "is_latest": index == 0,
            }
        )
    return versions

