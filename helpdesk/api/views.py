"""The organisation API: customers (with look-up by external id, phone or email), teams, agents."""

from __future__ import annotations

import django_filters
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk import privacy
from helpdesk.calendars import NoWorkingTime, add_business_seconds
from helpdesk.errors import DomainError
from helpdesk.models import Agent, ApiKey, BusinessCalendar, Customer, Team
from helpdesk.pii import can_see_pii
from helpdesk.queries import agent_of, agents_visible_to, schedule_for
from helpdesk.roles import is_administrator

from .auth import KeyScope
from .base import ApiViewSet, CursorPagination
from .errors import error_response
from .fields import ID_REGEX
from .schema import ErrorSerializer
from .serializers import (
    AgentSerializer,
    CalendarSerializer,
    CustomerSerializer,
    CustomerWriteSerializer,
    DueQuerySerializer,
    DueSerializer,
    PresenceSerializer,
    TeamSerializer,
    WhoAmISerializer,
)


class CustomerFilter(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    phone = django_filters.CharFilter()
    email = django_filters.CharFilter()
    tier = django_filters.ChoiceFilter(choices=Customer.Tier.choices)

    class Meta:
        model = Customer
        fields = ["external_id", "phone", "email", "tier"]


class IsAdministrator(BasePermission):
    """Requests about a customer's data as a whole (export, erasure) are for administrators."""

    message = gettext_lazy("Only administrators may export or erase a customer's data.")

    def has_permission(self, request: Request, view: object) -> bool:
        return is_administrator(request.user)


PRIVACY_PERMISSIONS = [IsAuthenticated, KeyScope, IsAdministrator]


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Customers. Look one up with ?external_id=, ?phone= or ?email= (exact)."""

    lookup_value_regex = ID_REGEX
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    permission_model = Customer

    def get_queryset(self) -> QuerySet[Customer]:
        from tickets.queries import (
            customers_visible_to,  # helpdesk loads before tickets
        )

        return customers_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        # Looking up by phone or email would confirm them to a role that may not see them.
        if not can_see_pii(self.request.user) and {"phone", "email", "external_id"} & set(self.request.query_params):
            raise PermissionDenied(_("Your role may not look customers up by phone, email or external id."))
        return super().filter_queryset(queryset)

    @extend_schema(request=CustomerWriteSerializer, responses={201: CustomerSerializer})
    def create(self, request: Request) -> Response:
        return self._save(CustomerWriteSerializer(data=request.data), status_code=201)

    @extend_schema(request=CustomerWriteSerializer, responses=CustomerSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        return self._save(CustomerWriteSerializer(self.get_object(), data=request.data, partial=True))

    def _save(self, serializer: CustomerWriteSerializer, status_code: int = 200) -> Response:
        serializer.is_valid(raise_exception=True)
        if not can_see_pii(self.request.user) and {"phone", "email"} & set(serializer.validated_data):
            raise PermissionDenied(_("Your role may not set customers' phone or email."))
        try:
            with transaction.atomic():
                customer = serializer.save()
        except IntegrityError:
            raise DomainError("duplicate", _("Another customer has this external id."), field="external_id") from None
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], permission_classes=PRIVACY_PERMISSIONS)
    def export(self, request: Request, pk: str) -> StreamingHttpResponse:
        """Everything about the customer as JSON (a request for their data), streamed; audited."""
        customer = self.get_object()
        response = StreamingHttpResponse(
            privacy.export_customer(customer=customer, actor=request.user), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{privacy.export_filename(customer.pk)}"'
        return response

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "Erasure",
            {
                "customer": serializers.IntegerField(),
                "already_erased": serializers.BooleanField(),
                "tickets_anonymised": serializers.IntegerField(),
            },
        ),
    )
    @action(detail=True, methods=["post"], permission_classes=PRIVACY_PERMISSIONS)
    def erase(self, request: Request, pk: str) -> Response:
        """Erase the customer's personal data (a request to be forgotten); 409 while any of their
        tickets is not closed. Idempotent: erasing again changes nothing."""
        customer = self.get_object()
        try:
            erasure = privacy.erase_customer(customer=customer, actor=request.user)
        except DomainError as error:
            if error.code != "open_tickets":
                raise
            return error_response(error.code, error.message, 409)  # the state refuses, not the request
        return Response(
            {
                "customer": erasure.customer_id,
                "already_erased": not erasure.changed,
                "tickets_anonymised": erasure.tickets_anonymised,
            }
        )


class NamePagination(CursorPagination):
    ordering = "id"


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Team.objects.all()
    serializer_class = TeamSerializer
    lookup_value_regex = ID_REGEX
    pagination_class = NamePagination


class AgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Agents; an agent sets their own presence at /agents/me/."""

    serializer_class = AgentSerializer
    pagination_class = NamePagination
    lookup_value_regex = ID_REGEX
    filterset_fields = ["presence"]
    action_permissions = {"me": {"GET": None, "PATCH": None}}

    def get_queryset(self) -> QuerySet[Agent]:
        visible = agents_visible_to(self.request.user).values("pk")
        return Agent.objects.filter(pk__in=visible).select_related("user").prefetch_related("teams", "skills")

    @extend_schema(methods=["PATCH"], request=PresenceSerializer, responses=AgentSerializer)
    @extend_schema(methods=["GET"], responses={200: AgentSerializer, 400: ErrorSerializer})
    @action(detail=False, methods=["get", "patch"])
    def me(self, request: Request) -> Response:
        agent = agent_of(request.user)
        if agent is None:
            raise DomainError("not_an_agent", _("You have no agent profile."))
        if request.method == "PATCH":
            # A partial update, as PATCH is (and as the schema says): no presence changes nothing.
            serializer = PresenceSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            from tickets.routing import (
                set_presence,  # routing moves the queues that presence opens or closes
            )

            if "presence" in serializer.validated_data:
                set_presence(agent=agent, presence=serializer.validated_data["presence"], actor=request.user)
        agent = Agent.objects.select_related("user").prefetch_related("teams", "skills").get(pk=agent.pk)
        return Response(AgentSerializer(agent).data)


class CalendarViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Business calendars, named by id or slug; `due` tells when N business seconds have passed."""

    queryset = BusinessCalendar.objects.prefetch_related("hours")
    serializer_class = CalendarSerializer
    pagination_class = NamePagination
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,50}"

    def get_object(self) -> BusinessCalendar:
        key = self.kwargs["pk"]
        by = {"pk": int(key)} if key.isdigit() and len(key) <= 18 else {"slug": key}
        calendar = self.get_queryset().filter(**by).first()
        if calendar is None:
            raise Http404
        return calendar

    @extend_schema(parameters=[DueQuerySerializer], responses=DueSerializer)
    @action(detail=True, methods=["get"])
    def due(self, request: Request, pk: str) -> Response:
        """When `seconds` of this calendar's working time have passed since `start`."""
        calendar = self.get_object()
        query = DueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, seconds = query.validated_data["start"], query.validated_data["seconds"]
        try:
            due = add_business_seconds(schedule_for(calendar), start, seconds)
        except (NoWorkingTime, OverflowError):
            message = _("This calendar has no working time after that instant.")
            raise DomainError("no_working_time", message, field="start") from None
        return Response(DueSerializer({"due": due}).data)


class WhoAmIView(APIView):
    """Who the key or session acts as: a cheap way for an integrator to check their key."""

    permission_classes = [IsAuthenticated, KeyScope]

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request: Request) -> Response:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response(
            {
                "username": request.user.get_username(),
                "key": api_key.name if api_key else None,
                "scope": api_key.scope if api_key else None,
            }
        )
