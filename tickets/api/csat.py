"""Satisfaction ratings and complaints in the API: thin views over tickets.csat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from helpdesk.api.base import ApiViewSet, CursorPagination
from helpdesk.api.fields import ID_REGEX, IdFilter, InstantField, TextField, UtcDateTimeFilter
from helpdesk.pii import texts_shown_to

from .. import csat
from ..models import Complaint, Csat, Ticket
from ..queries import visible_to

# A rating may carry the time another system collected it; a little clock skew is forgiven.
FUTURE_SKEW = timedelta(minutes=5)


class CsatSerializer(serializers.ModelSerializer):
    ticket = serializers.SerializerMethodField()
    comment = serializers.SerializerMethodField()

    class Meta:
        model = Csat
        fields = ["ticket", "stars", "comment", "source", "rated_at", "agent", "team"]

    def get_ticket(self, rating: Csat) -> str:
        return Ticket(pk=rating.ticket_id).reference

    def get_comment(self, rating: Csat) -> str:
        """The customer's words as the caller may read them: context["shown_text"] is the view's
        helpdesk.pii.texts_shown_to for the ratings' customers (required, so no view forgets it)."""
        return self.context["shown_text"](rating.ticket.customer_id, rating.comment)


class CsatCreateSerializer(serializers.Serializer):
    ticket = TextField(max_length=30, help_text="The ticket's reference, e.g. T00000012.")
    stars = serializers.IntegerField(min_value=1, max_value=5)
    comment = TextField(required=False, allow_blank=True, default="", max_length=5000)
    rated_at = InstantField(required=False, help_text="When the customer rated; default now.")

    def validate_ticket(self, value: str) -> Ticket:
        # A ticket the key may not see is "unknown" too: the answer must not confirm it exists.
        pk = Ticket.pk_from_reference(value)
        ticket = visible_to(self.context["user"]).filter(pk=pk).first() if pk is not None else None
        if ticket is None:
            raise serializers.ValidationError(_("Unknown ticket “%s”.") % value)
        return ticket

    def validate_rated_at(self, value: Any) -> Any:
        if value > timezone.now() + FUTURE_SKEW:
            raise serializers.ValidationError(_("A rating cannot be in the future."))
        return value


class CsatFilter(django_filters.FilterSet):
    stars = django_filters.MultipleChoiceFilter(choices=[(n, str(n)) for n in range(1, 6)], distinct=False)
    source = django_filters.MultipleChoiceFilter(choices=Csat.Source.choices, distinct=False)
    team = IdFilter(field_name="team_id")
    agent = IdFilter(field_name="agent_id")

    class Meta:
        model = Csat
        fields = ["stars", "source", "team", "agent"]


# "from" is a Python keyword, so these two are added by name: ?from=2026-03-01&to=2026-04-01.
CsatFilter.base_filters["from"] = UtcDateTimeFilter(field_name="rated_at", lookup_expr="gte", label="Rated at or after")
CsatFilter.base_filters["to"] = UtcDateTimeFilter(field_name="rated_at", lookup_expr="lt", label="Rated before")


class RatingPagination(CursorPagination):
    ordering = "-rated_at"


class CsatViewSet(mixins.ListModelMixin, ApiViewSet):
    """Satisfaction ratings of the tickets the caller may see, newest first; POST records one."""

    serializer_class = CsatSerializer
    filterset_class = CsatFilter
    pagination_class = RatingPagination
    permission_model = Csat

    def get_queryset(self) -> QuerySet[Csat]:
        # Every column the JSON shows is on the rating or its ticket (the customer, whose comment
        # it is): one query per page.
        return csat.ratings_visible_to(self.request.user).select_related("ticket")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        shown = texts_shown_to(request.user, {rating.ticket.customer_id for rating in page})
        serializer = CsatSerializer(page, many=True, context={**self.get_serializer_context(), "shown_text": shown})
        return self.get_paginated_response(serializer.data)

    @extend_schema(request=CsatCreateSerializer, responses={201: CsatSerializer})
    def create(self, request: Request) -> Response:
        """Record a rating collected in another system (source "api"); it replaces an earlier one."""
        serializer = CsatCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rating = csat.record_rating(
            ticket=data["ticket"], stars=data["stars"], comment=data["comment"], source=Csat.Source.API,
            rated_at=data.get("rated_at"), actor=request.user,
        )
        shown = texts_shown_to(request.user, [data["ticket"].customer_id])
        return Response(CsatSerializer(rating, context={"shown_text": shown}).data, status=status.HTTP_201_CREATED)


class ComplaintSerializer(serializers.ModelSerializer):
    ticket = serializers.SerializerMethodField()
    stars = serializers.IntegerField(source="csat.stars", read_only=True)
    # Plain text in the schema: an enum named "status" would collide with the tickets' one.
    status = serializers.CharField(read_only=True, help_text="open or closed")

    class Meta:
        model = Complaint
        fields = ["id", "ticket", "stars", "team", "status", "root_cause", "outcome", "created_at", "closed_at", "closed_by"]

    def get_ticket(self, complaint: Complaint) -> str:
        return Ticket(pk=complaint.ticket_id).reference


class ComplaintFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Complaint.Status.choices)
    team = IdFilter(field_name="team_id")
    root_cause = django_filters.ChoiceFilter(choices=Complaint.RootCause.choices)

    class Meta:
        model = Complaint
        fields = ["status", "team", "root_cause"]


class ComplaintViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Complaints (ratings of 1 or 2 stars) of the caller's teams; all of them for cross-team roles."""

    serializer_class = ComplaintSerializer
    filterset_class = ComplaintFilter
    permission_model = Complaint
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Complaint]:
        return csat.complaints_visible_to(self.request.user).select_related("csat")

