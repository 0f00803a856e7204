"""The QA API: sample runs, an inspector's reviews and their submission, scores for other systems."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api.auth import HasPermission
from helpdesk.api.base import ApiViewSet, CursorPagination
from helpdesk.api.fields import ID_REGEX, DayFilter, IdFilter, UtcDateTimeFilter
from helpdesk.errors import DomainError

from .. import services
from ..models import CriterionScore, Dispute, Review, SampleRun
from ..queries import report_refusal, reviews_visible_to, score_report, training_needs
from .serializers import (
    DisputeInputSerializer,
    ReportQuerySerializer,
    ResolveDisputeSerializer,
    ReviewSerializer,
    SampleRunSerializer,
    SubmitReviewSerializer,
)


class SampleRunFilter(django_filters.FilterSet):
    date = DayFilter(field_name="day")

    class Meta:
        model = SampleRun
        fields = ["date"]


class SampleRunPagination(CursorPagination):
    ordering = "-id"


class SampleRunViewSet(mixins.ListModelMixin, ApiViewSet):
    """Daily sample runs: `?date=YYYY-MM-DD` for one day's, with the tickets drawn."""

    serializer_class = SampleRunSerializer
    filterset_class = SampleRunFilter
    pagination_class = SampleRunPagination

    def get_queryset(self) -> QuerySet[SampleRun]:
        reviews = Prefetch("reviews", queryset=Review.objects.only("id", "run_id", "ticket_id"))
        return SampleRun.objects.select_related("scope__team").prefetch_related(reviews)


class ReviewFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Review.Status.choices)
    agent = IdFilter(field_name="agent_id")
    mine = django_filters.BooleanFilter(method="assigned_to_me", label="Only the reviews assigned to me")
    submitted_after = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="gt")

    class Meta:
        model = Review
        fields = ["status", "agent"]

    def assigned_to_me(self, queryset: QuerySet[Review], name: str, value: bool | None) -> QuerySet[Review]:
        return queryset.filter(inspector=self.request.user) if value else queryset


class ReviewPagination(CursorPagination):
    ordering = "-id"


class ReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """QA reviews the caller may see: an inspector's queue (`?mine=true&status=assigned`), an
    agent's own results, every score for a performance system (`?submitted_after=`)."""

    serializer_class = ReviewSerializer
    filterset_class = ReviewFilter
    pagination_class = ReviewPagination
    lookup_value_regex = ID_REGEX
    action_permissions = {
        "submit": {"POST": "qa.change_review"},
        "acknowledge": {"POST": None},  # the reviewed agent: the service checks it is theirs
        "dispute": {"POST": None},
        "resolve_dispute": {"POST": "qa.change_dispute"},
    }

    def get_queryset(self) -> QuerySet[Review]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Review.objects.none()
        scores = Prefetch("scores", queryset=CriterionScore.objects.select_related("criterion").order_by("criterion__position"))
        return reviews_visible_to(self.request.user).select_related("agent", "inspector", "dispute").prefetch_related(scores)

    @extend_schema(request=SubmitReviewSerializer, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Score every criterion (points, or null for N/A) and write the report; computes the score."""
        review = self.get_object()
        body = SubmitReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scores = {row["criterion"]: (row["points"], row["comment"]) for row in data["scores"]}
        services.submit_review(
            review=review, scores=scores, strengths=data["strengths"], shortcomings=data["shortcomings"],
            coaching=data["coaching"], actor=request.user,
        )
        return Response(ReviewSerializer(self.get_queryset().get(pk=review.pk)).data)

    @extend_schema(request=None, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str) -> Response:
        """The reviewed agent accepts the report."""
        review = services.acknowledge_review(review=self.get_object(), actor=request.user)
        return Response(ReviewSerializer(self.get_queryset().get(pk=review.pk)).data)

    @extend_schema(request=DisputeInputSerializer, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def dispute(self, request: Request, pk: str) -> Response:
        """The reviewed agent disputes the review, with a reason; a team lead decides."""
        body = DisputeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = self.get_object()
        services.dispute_review(review=review, reason=body.validated_data["reason"], actor=request.user)
        return Response(ReviewSerializer(self.get_queryset().get(pk=review.pk)).data, status=201)

    @extend_schema(request=ResolveDisputeSerializer, responses=ReviewSerializer)
    @action(detail=True, methods=["post"], url_path="resolve-dispute")
    def resolve_dispute(self, request: Request, pk: str) -> Response:
        """A team lead upholds the review or amends its scores, with a comment for the agent."""
        body = ResolveDisputeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        review = self.get_object()
        dispute = Dispute.objects.filter(review=review).first()
        if dispute is None:
            raise DomainError("not_disputed", _("This review is not disputed."))
        scores = {row["criterion"]: row["points"] for row in data.get("scores", [])}
        services.resolve_dispute(
            dispute=dispute, uphold=data["outcome"] == "uphold", comment=data["comment"], scores=scores, actor=request.user
        )
        return Response(ReviewSerializer(self.get_queryset().get(pk=review.pk)).data)


class QaReportView(APIView):
    """QA scores over a period by agent, team or criterion, with 95% intervals and the weekly
    trend, and the training needs list. For administrators, trainers, team leads and integrations."""

    permission_classes = [IsAuthenticated, HasPermission("qa.view_review")]

    @extend_schema(parameters=[ReportQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        team = data.get("team")
        refusal = report_refusal(request.user, team)
        if refusal:
            raise PermissionDenied(refusal)
        rows = score_report(start=data["from"], end=data["to"], by=data["by"], team=team)
        return Response({
            "from": data["from"], "to": data["to"], "by": data["by"], "rows": rows,
            "training_needs": training_needs(start=data["from"], end=data["to"], team=team),
        })
