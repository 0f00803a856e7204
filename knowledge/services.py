"""Every operation that changes the knowledge base.

The review rule lives here: an article's working copy goes draft → in review → published, and
only someone other than its last editor (and the one who sent it for review) may publish it.
Publishing copies the working copy to the live one, so an edit to a published article waits
for review while readers keep the reviewed version. Admin, API, commands and tasks call these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.errors import DomainError
from helpdesk.history import record_creation, unrecorded
from helpdesk.models import Agent, Tag
from helpdesk.notifications import in_default_language, notify
from helpdesk.pii import mask_text, shown_contact

from . import search
from .models import (
    Article,
    ArticleFeedback,
    ArticleUse,
    CannedReply,
    KbCategory,
    SearchLog,
    TrainingCase,
)
from .rendering import to_html

S = Article.Status
EDITABLE_FIELDS = frozenset({"title", "body", "slug", "language", "category", "audience", "owner", "review_due_on"})
PUBLISH_PERMISSION = "knowledge.publish_article"


def review_days() -> int:
    return settings.KB_REVIEW_DAYS


def _lock(article: Article) -> Article:
    return Article.objects.select_for_update().get(pk=article.pk)


def _save(article: Article, *, actor: AbstractBaseUser | None, reason: str) -> None:
    article.updated_at = timezone.now()
    if actor is not None:
        article._history_user = actor
    article._change_reason = reason
    article.save()


def unique_slug(title: str, *, taken: Any = None) -> str:
    """A slug from the title (Chinese kept), made unique with -2, -3…"""
    base = slugify(title, allow_unicode=True)[:180] or "article"
    slug, n = base, 1
    existing = Article.objects.exclude(pk=taken) if taken else Article.objects
    while existing.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


# --- writing -----------------------------------------------------------------------------


@transaction.atomic
def create_article(
    *, actor: AbstractBaseUser | None, title: str, body: str = "", slug: str = "", tags: Iterable[str] = (),
    ticket_categories: Iterable[Any] = (), **fields: Any,
) -> Article:
    """A new draft, owned by its writer unless an owner is named."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise DomainError("invalid", _("These fields cannot be set: %s.") % ", ".join(sorted(unknown)))
    if not (title or "").strip():
        raise DomainError("invalid", _("An article needs a title."), field="title")
    slug = slug or unique_slug(title)
    if Article.objects.filter(slug=slug).exists():
        raise DomainError("duplicate_slug", _("Another article already uses the slug %s.") % slug, field="slug")
    fields.setdefault("owner", actor)
    article = Article(title=title.strip(), body=body, slug=slug, created_by=actor, edited_by=actor, **fields)
    with unrecorded(article):  # the first version is written once its tags are set
        article.save()
        _set_relations(article, tags=tags, ticket_categories=ticket_categories)
    record_creation(article, user=actor, reason="created")
    search.reindex([article.pk])
    return article


@transaction.atomic
def update_article(
    *, article: Article, actor: AbstractBaseUser | None, changes: dict[str, Any],
    tags: Iterable[str] | None = None, ticket_categories: Iterable[Any] | None = None, reason: str = "edited",
) -> Article:
    """Change the working copy. A published (or in-review) article goes back to draft: the change
    needs a review, and until then readers keep the version that was reviewed."""
    article = _lock(article)
    if article.status == S.ARCHIVED:
        raise DomainError("archived", _("An archived article cannot be changed; restore it first."))
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise DomainError("invalid", _("These fields cannot be set: %s.") % ", ".join(sorted(unknown)))
    if "title" in changes and not (changes["title"] or "").strip():
        raise DomainError("invalid", _("An article needs a title."), field="title")
    if "slug" in changes and Article.objects.filter(slug=changes["slug"]).exclude(pk=article.pk).exists():
        raise DomainError("duplicate_slug", _("Another article already uses the slug %s.") % changes["slug"], field="slug")
    changed = {name: value for name, value in changes.items() if getattr(article, name) != value}
    relations = _relations_changed(article, tags, ticket_categories)
    if not changed and not relations:
        return article
    for name, value in changed.items():
        setattr(article, name, value)
    content = set(changed) - {"owner", "review_due_on"} or relations
    if content:  # who looks after it and when it is next checked need no review
        article.edited_by = actor
        if article.status in (S.PUBLISHED, S.IN_REVIEW):
            article.status = S.DRAFT
            article.reviewed_by = None
    if relations:  # before the save, so the one version it records has them
        with unrecorded(article):
            _set_relations(article, tags=tags, ticket_categories=ticket_categories)
    _save(article, actor=actor, reason=reason)
    search.reindex([article.pk])
    return article


def _relations_changed(article: Article, tags: Iterable[str] | None, ticket_categories: Iterable[Any] | None) -> bool:
    if tags is not None and set(_clean_tags(tags)) != set(article.tags.values_list("name", flat=True)):
        return True
    if ticket_categories is not None:
        wanted = {getattr(c, "pk", c) for c in ticket_categories}
        if wanted != set(article.ticket_categories.values_list("pk", flat=True)):
            return True
    return False


def _clean_tags(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(name.strip()[:50] for name in tags if name and name.strip()))


def _set_relations(article: Article, *, tags: Iterable[str] | None, ticket_categories: Iterable[Any] | None) -> None:
    if tags is not None:
        names = _clean_tags(tags)
        Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
        article.tags.set(Tag.objects.filter(name__in=names))
    if ticket_categories is not None:
        article.ticket_categories.set(list(ticket_categories))


@transaction.atomic
def submit_for_review(*, article: Article, actor: AbstractBaseUser) -> Article:
    article = _lock(article)
    if article.status != S.DRAFT:
        raise DomainError("invalid_status", _("Only a draft can be sent for review."))
    article.status, article.submitted_by, article.review_note = S.IN_REVIEW, actor, ""
    _save(article, actor=actor, reason="sent for review")
    return article


# Versions that are not a change of content: who made them did not write the text.
NOT_WRITING = ("sent for review", "sent back", "published", "archived")


def authors_since_published(article: Article) -> set[int]:
    """Everyone whose words are in the change under review: who wrote or restored content since
    the last publish, and for a revert who wrote the version it restored."""
    versions = article.history.order_by("-history_id").values_list("history_user_id", "history_change_reason")
    authors: set[int] = set()
    for user_id, reason in versions.iterator():
        if reason == "published":
            break
        if reason and reason.startswith("reverted to version "):
            restored = article.history.filter(history_id=reason.rsplit(" ", 1)[-1]).values_list("history_user_id", flat=True)
            authors.update(pk for pk in restored if pk is not None)
        if user_id is not None and reason not in NOT_WRITING:
            authors.add(user_id)
    return authors


def _check_reviewer(article: Article, reviewer: AbstractBaseUser) -> None:
    if not reviewer.has_perm(PUBLISH_PERMISSION):
        raise DomainError("forbidden", _("You may not review articles."))
    if reviewer.pk in {article.edited_by_id, article.submitted_by_id} | authors_since_published(article):
        raise DomainError("self_review", _("Someone other than the article's author must review it."))


@transaction.atomic
def publish(
    *, article: Article, reviewer: AbstractBaseUser, note: str = "", today: date | None = None,
    seen_version: Any = None, check_seen: bool = False,
) -> Article:
    """Approve the change under review: it becomes what readers see. With `check_seen`,
    `seen_version` is the article's `updated_at` on the page the reviewer read, and a change made
    since is refused, so nobody publishes a text they did not see."""
    article = _lock(article)
    if article.status != S.IN_REVIEW:
        raise DomainError("invalid_status", _("Only an article in review can be published."))
    _check_reviewer(article, reviewer)
    if check_seen and article.updated_at != seen_version:
        raise DomainError("changed", _("The article changed after you opened it; read it again before publishing."))
    today = today or timezone.localdate()
    article.live_title, article.live_body, article.live_html = article.title, article.body, to_html(article.body)
    article.live_audience = article.audience
    article.published_at = timezone.now()
    if article.review_due_on is None or article.review_due_on <= today:
        article.review_due_on = today + timedelta(days=review_days())
    article.review_reminded_on = None
    article.status, article.reviewed_by, article.review_note = S.PUBLISHED, reviewer, note
    _save(article, actor=reviewer, reason="published")
    search.reindex([article.pk])
    return article


@transaction.atomic
def reject(*, article: Article, reviewer: AbstractBaseUser, note: str) -> Article:
    """Send the change back to its author with what to fix."""
    article = _lock(article)
    if article.status != S.IN_REVIEW:
        raise DomainError("invalid_status", _("Only an article in review can be sent back."))
    _check_reviewer(article, reviewer)
    if not (note or "").strip():
        raise DomainError("invalid", _("Say what needs changing."), field="note")
    article.status, article.reviewed_by, article.review_note = S.DRAFT, reviewer, note.strip()
    _save(article, actor=reviewer, reason="sent back")
    return article


@transaction.atomic
def archive(*, article: Article, actor: AbstractBaseUser) -> Article:
    article = _lock(article)
    if article.status == S.ARCHIVED:
        return article
    article.status = S.ARCHIVED
    _save(article, actor=actor, reason="archived")
    return article


@transaction.atomic
def restore(*, article: Article, actor: AbstractBaseUser) -> Article:
    """Bring an archived article back as a draft; its last reviewed version shows again only
    after a new review."""
    article = _lock(article)
    if article.status != S.ARCHIVED:
        raise DomainError("invalid_status", _("Only an archived article can be restored."))
    article.status, article.published_at, article.edited_by = S.DRAFT, None, actor
    article.live_title = article.live_body = article.live_html = article.live_audience = ""
    _save(article, actor=actor, reason="restored")
    search.reindex([article.pk])
    return article


def revert(*, article: Article, history_id: int, actor: AbstractBaseUser) -> Article:
    """Make an earlier version the working copy again: a change like any other, so it is
    reviewed before readers see it."""
    record = article.history.filter(history_id=history_id).first()
    if record is None:
        raise DomainError("not_found", _("That version is not one of this article's."), field="history_id")
    changes = {name: getattr(record, name) for name in ("title", "body", "language", "audience", "review_due_on")}
    changes["category"] = KbCategory.objects.filter(pk=record.category_id).first()
    changes["owner"] = get_user_model().objects.filter(pk=record.owner_id).first()
    # Tags and ticket categories deleted since are left out.
    tags = [link.tag.name for link in record.tags.select_related("tag") if link.tag is not None]
    from tickets.models import Category

    categories = list(Category.objects.filter(pk__in=[link.category_id for link in record.ticket_categories.all()]))
    return update_article(
        article=article, actor=actor, changes=changes, tags=tags, ticket_categories=categories,
        reason=f"reverted to version {history_id}",
    )


# --- reading and using -------------------------------------------------------------------


def find(query: str, *, user: AbstractBaseUser | None, source: str, public_only: bool,
         live_only: bool = False, limit: int = 10) -> list[search.Hit]:
    """Search, and log the search (zero-result searches feed the gap report)."""
    hits = search.search(query, public_only=public_only, live_only=live_only, limit=limit)
    if query.strip():
        masked = mask_text(query.strip())  # readers type their phone numbers into search boxes too
        SearchLog.objects.create(
            query=masked[:200], normalized=search.normalize(masked), results=len(hits), source=source,
            public=public_only, user=user if user is not None and user.is_authenticated else None,
        )
    return hits


@transaction.atomic
def record_feedback(
    *, article: Article, helpful: bool, user: AbstractBaseUser | None = None, comment: str = "",
) -> ArticleFeedback:
    """A reader's verdict. A signed-in user has one vote an article, which they may change;
    anonymous readers (the help centre) each add one."""
    if not article.is_live:
        raise DomainError("not_published", _("Only published articles take feedback."))
    signed_in = user is not None and user.is_authenticated
    source = ArticleFeedback.Source.AGENT if signed_in and user.is_staff else ArticleFeedback.Source.PUBLIC
    if signed_in:
        previous = ArticleFeedback.objects.select_for_update().filter(article=article, user=user).first()
        if previous is not None:
            if previous.helpful != helpful:
                _count(article, previous.helpful, -1)
                _count(article, helpful, +1)
                previous.helpful, previous.comment = helpful, comment[:500]
                previous.save(update_fields=["helpful", "comment"])
            return previous
    try:
        with transaction.atomic():  # a double click: the second insert hits the one-vote constraint
            feedback = ArticleFeedback.objects.create(
                article=article, helpful=helpful, user=user if signed_in else None, source=source, comment=comment[:500],
            )
    except IntegrityError:
        return record_feedback(article=article, helpful=helpful, user=user, comment=comment)
    _count(article, helpful, +1)
    return feedback


def _count(article: Article, helpful: bool, step: int) -> None:
    field = "helpful_count" if helpful else "unhelpful_count"
    Article.objects.filter(pk=article.pk).update(**{field: F(field) + step})


def link_to_ticket(*, article: Article, ticket: Any, agent: Agent | None) -> bool:
    """Record that an agent put the article into a reply on the ticket; counted once a ticket.
    Returns whether this was the first time."""
    try:
        with transaction.atomic():
            ArticleUse.objects.create(article=article, ticket=ticket, agent=agent)
    except IntegrityError:
        return False
    Article.objects.filter(pk=article.pk).update(usage_count=F("usage_count") + 1)
    return True


_BRACED = re.compile(r"\{([a-z_]+)\}")


def canned_replies_for(agent: Agent | None) -> Any:
    """The active canned replies an agent may use: the global ones and their teams'."""
    from django.db.models import Q

    teams = list(agent.teams.values_list("pk", flat=True)) if agent is not None else []
    return CannedReply.objects.filter(Q(team__isnull=True) | Q(team__in=teams), is_active=True).select_related("team")


_LOOK_UP: Any = object()


def next_reply_due(ticket: Any) -> Any:
    """When the ticket's earliest running SLA clock falls due ({expected_reply_time}), or None."""
    from tickets.models import SlaClock

    return (
        SlaClock.objects.filter(ticket=ticket, fulfilled_at=None, stopped_at=None, paused_at=None)
        .order_by("due_at").values_list("due_at", flat=True).first()
    )


def render_canned_reply(
    reply: CannedReply, *, ticket: Any = None, agent: Agent | None = None, reply_due: Any = _LOOK_UP,
    viewer: AbstractBaseUser | None = None,
) -> str:
    """The reply's text with its placeholders filled for this ticket; a placeholder that has no
    value here (no ticket, no running clock) is left as written for the agent to fill. Rendering
    several for one ticket, pass reply_due=next_reply_due(ticket) so the clock is read once."""
    values: dict[str, str] = {}
    if agent is not None:
        values["agent_name"] = agent.display_name
    if ticket is not None:
        from tickets.autoreplies import format_reply_time

        values["ticket_ref"] = ticket.reference
        # Masked for a viewer who may not see the customer's details (QA inspectors, trainers).
        values["customer_name"] = shown_contact(ticket.customer, viewer)["name"] if viewer is not None else ticket.customer.name
        due = next_reply_due(ticket) if reply_due is _LOOK_UP else reply_due
        if due is not None:
            now = timezone.now()
            values["expected_reply_time"] = format_reply_time(
                due, zone=timezone.get_current_timezone(), language=reply.language, now=now,
            )
    return _BRACED.sub(lambda m: values.get(m.group(1), m.group(0)), reply.body)


# --- training cases ----------------------------------------------------------------------

CUSTOMER = gettext_lazy("Customer")
AGENT = gettext_lazy("Agent")


def anonymise(text: str, *, customer: Any) -> str:
    """Take the customer out of a text, as retention does (helpdesk.privacy): their current and
    past name, phone however it is written, email and channel ids, and anything that looks like
    a phone, email, ID or card number."""
    from helpdesk.privacy import scrubber_for

    return scrubber_for(customer.pk)(text)


@transaction.atomic
def archive_case(*, ticket: Any, actor: AbstractBaseUser, title: str = "", lessons: str = "") -> TrainingCase:
    """Keep a solved ticket's public conversation as an internal training case, anonymised."""
    from tickets.models import Message, Ticket

    if ticket.status not in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        raise DomainError("invalid_status", _("Only a solved or closed ticket can become a training case."))
    from helpdesk.privacy import scrubber_for

    scrub = scrubber_for(ticket.customer_id)  # one look-up of the customer's details for every message
    transcript = [
        {
            "role": kind,
            "at": at.isoformat(),
            "body": scrub(body),
        }
        for kind, at, body in ticket.messages.filter(is_internal=False)
        .order_by("created_at", "pk")
        .values_list("author_kind", "created_at", "body")
    ]
    if not transcript:
        raise DomainError("empty", _("The ticket has no conversation to keep."))
    roles = {Message.AuthorKind.CUSTOMER: "customer", Message.AuthorKind.AGENT: "agent"}
    for line in transcript:
        line["role"] = roles.get(line["role"], "system")
    case = TrainingCase(
        title=(title or scrub(ticket.subject))[:200], source_ticket=ticket,
        category_id=ticket.category_id, channel=ticket.channel, lessons=lessons, transcript=transcript, created_by=actor,
    )
    case._history_user = actor
    case.save()
    return case


# --- review reminders --------------------------------------------------------------------


def remind_overdue_reviews(*, today: date | None = None, every_days: int = 7) -> int:
    """Tell each owner which of their published articles are past their review date, at most
    once a week an article. Returns how many owners were told.

    The owner's row is locked (skip_locked) and their articles read again before the notice goes:
    of two runs at once (two beats) one tells the owner, the other finds the owner locked or the
    articles reminded. Locking the articles themselves with skip_locked could split one owner's
    articles between the two runs, and tell them twice.
    """
    today = today or timezone.localdate()
    live = Article.objects.filter(published_at__isnull=False).exclude(status=S.ARCHIVED)  # an edit may be pending
    due = live.filter(review_due_on__lte=today, owner__isnull=False).exclude(
        review_reminded_on__gt=today - timedelta(days=every_days)
    )
    told = 0
    for owner_id in list(due.order_by("owner_id").values_list("owner_id", flat=True).distinct()[:5000]):
        with transaction.atomic():
            if not list(get_user_model().objects.filter(pk=owner_id).select_for_update(skip_locked=True).values_list("pk")):
                continue  # another run is telling this owner
            articles = list(due.filter(owner_id=owner_id).select_related("owner").order_by("review_due_on"))
            if not articles:
                continue  # another run got there first
            titles = "; ".join(article.shown_title for article in articles[:20])
            text = in_default_language(
                gettext_lazy("%(count)d articles you own are due for review: %(titles)s"), count=len(articles), titles=titles,
            )
            notify(recipients=[articles[0].owner], kind="kb_review_due", text=text)
            Article.objects.filter(pk__in=[a.pk for a in articles]).update(review_reminded_on=today)
            told += 1
    return told
