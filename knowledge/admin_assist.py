"""Agent assist on the ticket page: articles suggested for the conversation and canned replies,
both insertable into the reply box (static/knowledge/assist.js), feedback on the suggestions,
and the usage links made once a reply with inserted articles is sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.models import Agent
from helpdesk.queries import agent_of

from . import search, services
from .models import Article, Audience
from .rendering import to_text

SUGGESTIONS = 5
SUMMARY_CHARS = 200
QUERY_CHARS = 300
VIEW_PERMISSION = "knowledge.view_article"


def assist_context(request: HttpRequest, ticket: Any, *, can_reply: bool) -> dict[str, Any]:
    """The suggested articles (live ones only: an agent may quote them) and, for who may reply,
    the canned replies filled in for this ticket. A fixed number of queries."""
    user = request.user
    if not user.has_perm(VIEW_PERMISSION):
        return {}
    suggestions = suggested_articles(ticket, user=user)
    canned = canned_replies(ticket, agent_of(user), viewer=user) if can_reply else []
    return {
        "kb_suggestions": suggestions,
        "kb_canned": canned,
        "kb_can_insert": can_reply,
        "kb_assist_data": {
            "articles": [{"id": s["id"], "title": s["title"], "text": s["insert"]} for s in suggestions if s["public"]],
            "canned": [{"id": c["id"], "title": c["title"], "shortcut": c["shortcut"], "text": c["text"]} for c in canned],
        },
    }


def ticket_query(ticket: Any) -> str:
    """What the conversation is about: the subject and the customer's first message, with the
    customer's name and contact details taken out (the search log keeps the query)."""
    from tickets.models import Message

    first = (
        ticket.messages.filter(author_kind=Message.AuthorKind.CUSTOMER, is_internal=False)
        .order_by("sent_at", "id").values_list("body", flat=True).first()
    )
    text = f"{ticket.subject} {first or ''}"[:QUERY_CHARS]
    return services.anonymise(text, customer=ticket.customer)


def suggested_articles(ticket: Any, *, user: Any) -> list[dict[str, Any]]:
    # Not logged as a search: it runs on every view of the ticket page, nobody typed it, and the
    # gap report counts ticket categories without a good article already.
    hits = search.search(ticket_query(ticket), public_only=False, live_only=True, limit=SUGGESTIONS)
    if not hits:
        return []
    articles = Article.objects.only("pk", "slug", "live_title", "live_body", "live_audience", "published_at", "status", "helpful_count", "unhelpful_count").in_bulk(
        [hit.article_id for hit in hits]
    )
    suggestions = []
    for hit in hits:
        article = articles.get(hit.article_id)
        if article is None:
            continue
        suggestions.append({
            "id": article.pk,
            "title": article.live_title,
            "snippet": hit.snippet,  # escaped by search.snippet, the query's words in <mark>
            "audience": Audience(article.live_audience or Audience.INTERNAL).label,
            "public": article.live_audience == Audience.PUBLIC,
            "helpful": article.helpful_count,
            "unhelpful": article.unhelpful_count,
            "url": reverse("admin:knowledge_article_change", args=[article.pk]),
            "feedback_url": reverse("admin:knowledge_article_feedback", args=[article.pk]),
            # Only a public article goes into a reply: the customer reads it. Internal ones are
            # for the agent's eyes.
            "insert": insert_text(article) if article.live_audience == Audience.PUBLIC else "",
        })
    return suggestions


def insert_text(article: Article) -> str:
    """What "Insert" puts into the reply: the title, the start of the published text, and the
    help-centre link of a public article when settings.KB_PUBLIC_ARTICLE_URL names one."""
    summary = to_text(article.live_body)
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS].rstrip() + "…"
    parts = [f"【{article.live_title}】", summary]
    template = getattr(settings, "KB_PUBLIC_ARTICLE_URL", "")
    if template and article.live_audience == Audience.PUBLIC:
        parts.append(template.format(slug=article.slug))
    return "\n".join(part for part in parts if part)


def canned_replies(ticket: Any, agent: Agent | None, *, viewer: Any) -> list[dict[str, Any]]:
    if agent is None:
        return []
    replies = list(services.canned_replies_for(agent))
    due = services.next_reply_due(ticket) if replies else None  # read once for all of them
    return [
        {
            "id": reply.pk,
            "title": reply.title,
            "shortcut": reply.shortcut,
            "team": reply.team.name if reply.team_id else "",
            "text": services.render_canned_reply(reply, ticket=ticket, agent=agent, reply_due=due, viewer=viewer),
        }
        for reply in replies
    ]


def link_inserted_articles(*, ticket: Any, agent: Agent | None, article_ids: Iterable[int]) -> int:
    """After a reply is sent: each live article inserted into it counts as used on the ticket
    (once a ticket). Ids of articles archived meanwhile are passed over. Returns how many were new."""
    ids = list(article_ids)
    if not ids:
        return 0
    articles = search.visible(public_only=False, live_only=True).filter(pk__in=ids).order_by("pk")
    return sum(services.link_to_ticket(article=article, ticket=ticket, agent=agent) for article in articles)


def feedback_view(request: HttpRequest, object_id: str) -> HttpResponse:
    """An agent marks a suggested article helpful or not: JSON for assist.js, else a redirect
    back to where the button was."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    article = Article.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
    if article is None:
        return _answer(request, 404, _("No such article."))
    if request.method != "POST":
        return _answer(request, 405, _("Send the verdict with POST."))
    verdict = request.POST.get("helpful", "")
    if verdict not in ("1", "0"):
        return _answer(request, 400, _("Say whether the article helped: helpful=1 or helpful=0."), field="helpful")
    try:
        services.record_feedback(article=article, helpful=verdict == "1", user=request.user)
    except DomainError as error:
        return _answer(request, 400, error.message, field=error.field)
    article.refresh_from_db(fields=["helpful_count", "unhelpful_count"])
    return _answer(
        request, 200, _("Thank you: your verdict counts for the article's ranking."),
        counts={"helpful": article.helpful_count, "unhelpful": article.unhelpful_count},
    )


def _answer(request: HttpRequest, status: int, message: str, *, field: str | None = None, counts: dict | None = None) -> HttpResponse:
    if "application/json" in request.headers.get("Accept", ""):
        if status >= 400:
            return JsonResponse({"error": {"message": message, "field": field}}, status=status)
        return JsonResponse({"message": message, **(counts or {})}, status=status)
    (messages.success if status < 400 else messages.error)(request, message)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("admin:knowledge_article_changelist")
    return HttpResponseRedirect(back)
