"""GET /api/v1/reports/summary: the numbers of docs/metrics.md for a range and filters."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api.fields import DayField, id_field
from helpdesk.models import Channel

from .. import reports
from ..models import Category


class SummaryQuerySerializer(serializers.Serializer):
    to = DayField(help_text="Last day, inclusive, YYYY-MM-DD (TIME_ZONE).")
    team = id_field(required=False)
    agent = id_field(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    category = serializers.SlugField(required=False, max_length=50, help_text="A category's code.")

    def validate_category(self, code: str) -> int:
        pk = Category.objects.filter(code=code).values_list("pk", flat=True).first()
        if pk is None:
            raise serializers.ValidationError(_("Unknown category “%s”.") % code)
        return pk


# "from" is a Python keyword, so it cannot be declared in the class body.
SummaryQuerySerializer._declared_fields = {
    "from": DayField(help_text="First day, YYYY-MM-DD (TIME_ZONE)."), **SummaryQuerySerializer._declared_fields
}


class SummaryView(APIView):
    """Volume, speed, outcomes, SLA, CSAT and QA for the range, against the previous period and a
    year earlier. Team leads see their own teams; administrators and integrations everything."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[SummaryQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = reports.Filters(
            team=data.get("team"), agent=data.get("agent"), channel=data.get("channel"), category=data.get("category")
        )
        filters = reports.allowed_filters(request.user, filters)
        return Response(reports.summary(start=data["from"], end=data["to"], filters=filters))
