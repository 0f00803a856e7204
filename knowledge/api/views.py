"""The knowledge-base API: articles, search and feedback for a help centre and for staff, canned
replies for agents. Articles are read-only here: they are written and reviewed in the admin."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api.auth import KeyScope, PerClientThrottle
from helpdesk.api.base import ApiViewSet, CursorPagination
from helpdesk.queries import agent_of
from tickets.models import Ticket
from tickets.queries import visible_to as tickets_visible_to

from .. import services
from ..models import Article, CannedReply
from .access import (
    AnonymousFeedbackThrottle,
    articles_visible_to,
    reads_internal,
    votes_for_readers,
)
from .filters import STAFF_FILTERS, ArticleFilter
from .serializers import (
    CannedReplySerializer,
    KbArticleDetailSerializer,
    KbArticleSerializer,
    KbFeedbackResultSerializer,
    KbFeedbackSerializer,
    KbSearchQuerySerializer,
    KbSearchResultsSerializer,
)

SLUG_REGEX = r"[-\w]+"  # a Unicode slug (Article.slug): anything else cannot name an article
# A list shows no body: the columns it never reads stay in the database.
LIST_DEFERRED = ("body", "live_body", "live_html", "search_title", "search_body", "search_vector")


class ArticlePagination(CursorPagination):
    ordering = "-id"


class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Articles the caller may read: live public ones for anyone (no key needed) and for
    integration keys; every article that is not archived for staff who may read articles."""

    serializer_class = KbArticleSerializer
    filterset_class = ArticleFilter
    pagination_class = ArticlePagination
    # Anyone may read (AllowAny also marks the key as optional in the schema); what each caller
    # sees is the queryset's business.
    permission_classes = [AllowAny, KeyScope]
    lookup_field = "slug"
    lookup_value_regex = SLUG_REGEX

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Idempotency keys are kept per user; an anonymous reader's vote has nobody to keep one for.
        if request.method == "POST" and not request.user.is_authenticated:
            APIView.initial(self, request, *args, **kwargs)
            return
        super().initial(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Article]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Article.objects.none()
        articles = articles_visible_to(self.request.user).select_related("category").prefetch_related("tags")
        return articles.defer(*LIST_DEFERRED) if self.action == "list" else articles

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "public": not reads_internal(self.request.user)}

    def filter_queryset(self, queryset: QuerySet[Article]) -> QuerySet[Article]:
        # The working copy's status would tell a public caller that an unreviewed change waits.
        asked = STAFF_FILTERS & set(self.request.query_params)
        if asked and not reads_internal(self.request.user):
            raise PermissionDenied(_("Only staff may filter articles by %s.") % ", ".join(sorted(asked)))
        return super().filter_queryset(queryset)

    def get_object(self) -> Article:
        article = self.get_queryset().filter(slug=self.kwargs["slug"]).first()
        if article is None:
            raise Http404
        return article

    @extend_schema(responses=KbArticleDetailSerializer)
    def retrieve(self, request: Request, slug: str) -> Response:
        """One article with its body as safe HTML; 404 when the caller may not read it."""
        article = self.get_object()
        return Response(KbArticleDetailSerializer(article, context=self.get_serializer_context()).data)

    @extend_schema(request=KbFeedbackSerializer, responses={201: KbFeedbackResultSerializer})
    @action(detail=True, methods=["post"], throttle_classes=[PerClientThrottle, AnonymousFeedbackThrottle])
    def feedback(self, request: Request, slug: str) -> Response:
        """Helpful or not. Anonymous readers may vote on live public articles (a budget per IP
        address); an integration key votes for its readers, each call one vote; a staff
        member has one vote an article, which a second call changes."""
        article = self.get_object()
        body = KbFeedbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        voter = None if votes_for_readers(request.user) else request.user
        services.record_feedback(article=article, helpful=data["helpful"], user=voter, comment=data["comment"])
        counts = Article.objects.filter(pk=article.pk).values("helpful_count", "unhelpful_count").get()
        result = KbFeedbackResultSerializer({"helpful": data["helpful"], **counts})
        return Response(result.data, status=status.HTTP_201_CREATED)


class SearchView(APIView):
    """Search articles in Chinese, English or both; public callers search live public articles."""

    permission_classes = [AllowAny, KeyScope]

    @extend_schema(parameters=[KbSearchQuerySerializer], responses=KbSearchResultsSerializer)
    def get(self, request: Request) -> Response:
        query = KbSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        hits = services.find(
            query.validated_data["q"], user=request.user, source="api",
            public_only=not reads_internal(request.user), limit=query.validated_data["limit"],
        )
        return Response(KbSearchResultsSerializer({"results": hits}).data)


class CannedReplyPagination(CursorPagination):
    ordering = ("position", "id")


class CannedReplyViewSet(mixins.ListModelMixin, ApiViewSet):
    """The active canned replies the caller may use: the global ones and their teams'."""

    serializer_class = CannedReplySerializer
    pagination_class = CannedReplyPagination
    permission_model = CannedReply

    def get_queryset(self) -> QuerySet[CannedReply]:
        if getattr(self, "swagger_fake_view", False):
            return CannedReply.objects.none()
        return services.canned_replies_for(agent_of(self.request.user))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ticket", OpenApiTypes.STR,
                description="A ticket's reference: each body comes with its placeholders filled for that ticket.",
            )
        ]
    )
    def list(self, request: Request) -> Response:
        reference = request.query_params.get("ticket")
        ticket = self._ticket(reference) if reference is not None else None
        page = self.paginate_queryset(self.get_queryset())
        context = self.get_serializer_context()
        if ticket is not None:
            agent, due = agent_of(request.user), services.next_reply_due(ticket)
            context["bodies"] = {
                reply.pk: services.render_canned_reply(reply, ticket=ticket, agent=agent, reply_due=due, viewer=request.user)
                for reply in page
            }
        return self.get_paginated_response(CannedReplySerializer(page, many=True, context=context).data)

    def _ticket(self, reference: str) -> Ticket:
        """The ticket, if the caller may see it; a 404 either way, so the answer confirms nothing."""
        pk = Ticket.pk_from_reference(reference)
        ticket = tickets_visible_to(self.request.user).select_related("customer").filter(pk=pk).first() if pk else None
        if ticket is None:
            raise Http404
        return ticket

