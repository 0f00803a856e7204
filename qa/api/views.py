"""The QA API: sample runs (reviews and scores come with the review workflow)."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, QuerySet
from rest_framework import mixins

from helpdesk.api.base import ApiViewSet, CursorPagination

from ..models import Review, SampleRun
from .serializers import SampleRunSerializer


class SampleRunFilter(django_filters.FilterSet):
    date = django_filters.DateFilter(field_name="day")

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
