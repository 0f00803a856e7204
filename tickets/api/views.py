"""The tickets API: thin views over tickets.services, tickets.intake and tickets.queries."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import filters, mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api.auth import HasPermission, KeyScope
from helpdesk.api.base import ApiViewSet, CursorPagination
from helpdesk.api.idempotency import IdempotentPostMixin
from helpdesk.errors import DomainError
from helpdesk.models import Tag
from helpdesk.pii import can_see_pii, text_shown_to, texts_shown_to
from helpdesk.queries import agent_of
from helpdesk.roles import sees_everything

from .. import intake, queries, routing, services
from ..models import Escalation, Message, SlaClock, Ticket
from .filters import TicketFilter
from .serializers import (
    EscalateSerializer,
    EscalationSerializer,
    HandBackSerializer,
    IngestResultSerializer,
    IngestSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    TicketCreateSerializer,
    TicketSerializer,
    TicketUpdateSerializer,
    TransitionSerializer,
)

CLOCKS = Prefetch("sla_clocks", queryset=SlaClock.objects.select_related("calendar").order_by("started_at", "id"))


def list_queryset(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Everything a ticket's JSON shows, in two queries whatever the page size."""
    return queryset.select_related("customer", "team", "assignee__user", "category").prefetch_related("tags", CLOCKS)


def page_context(user: Any, tickets: list[Ticket], context: dict[str, Any]) -> dict[str, Any]:
    """A page of tickets: subjects scrubbed and hidden customers found with a few queries, not a few each."""
    hidden = queries.hidden_customers(user, tickets)
    context = {**context, "hidden_customers": hidden}
    if hidden or not can_see_pii(user):
        context["shown_texts"] = texts_shown_to(user, {ticket.customer_id for ticket in tickets}, hidden)
    return context


class MessagePagination(CursorPagination):
    ordering = "sent_at"


class EscalationPagination(CursorPagination):
    ordering = "created_at"


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Tickets, named by their reference (T00012345) in every URL."""

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["created_at", "updated_at"]
    lookup_field = "reference"
    lookup_value_regex = r"[^/]+"
    action_permissions = {
        "transition": {"POST": "tickets.change_ticket"},
        "messages": {"GET": "tickets.view_message", "POST": "tickets.add_message"},
        "escalate": {"POST": "tickets.add_escalation"},
        "claim": {"POST": "tickets.change_ticket"},
        "hand_back": {"POST": "tickets.change_escalation"},
        "escalations": {"GET": "tickets.view_escalation"},
    }

    def get_queryset(self) -> QuerySet[Ticket]:
        visible = queries.visible_to(self.request.user)
        return list_queryset(visible) if self.action in ("list", "retrieve") else visible

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], list):
            kwargs["context"] = page_context(self.request.user, args[0], self.get_serializer_context())
        return super().get_serializer(*args, **kwargs)

    def get_object(self) -> Ticket:
        pk = Ticket.pk_from_reference(self.kwargs["reference"])
        if pk is None:
            raise Http404
        ticket = self.get_queryset().filter(pk=pk).first()
        if ticket is None:
            raise Http404
        self.check_object_permissions(self.request, ticket)
        return ticket

    def _render(
        self, ticket: Ticket, status_code: int = status.HTTP_200_OK, fresh: bool = False, tagged: bool = True
    ) -> Response:
        """The ticket's JSON. A ticket the services just made already holds its relations."""
        if fresh and tagged:
            prefetch_related_objects([ticket], "tags")
        elif fresh:
            ticket._prefetched_objects_cache = {"tags": Tag.objects.none()}  # just made: no tags
        else:
            ticket = list_queryset(Ticket.objects.filter(pk=ticket.pk)).get()
        return Response(TicketSerializer(ticket, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketSerializer, 200: TicketSerializer})
    def create(self, request: Request) -> Response:
        """Open a ticket; an external_id seen before returns that ticket with 200."""
        data = self._valid(TicketCreateSerializer, request.data)
        ticket, created = intake.create_ticket(
            subject=data["subject"], channel=data["channel"], customer=data["customer"], message=data["message"],
            category=data.get("category"), priority=data["priority"], team=data.get("team"), tags=data.get("tags"),
            external_id=data["external_id"], conversation_id=data["conversation_id"], actor=request.user,
        )
        if not created:
            if not queries.visible_to(request.user).filter(pk=ticket.pk).exists():
                raise DomainError("duplicate", _("A ticket with this external id exists already."), field="external_id")
            return self._render(ticket)
        return self._render(ticket, status.HTTP_201_CREATED, fresh=True, tagged=bool(data.get("tags")))

    @extend_schema(request=TicketUpdateSerializer, responses=TicketSerializer)
    def partial_update(self, request: Request, reference: str) -> Response:
        """Change priority, category, tags, team or assignee."""
        ticket = self.get_object()
        data = self._valid(TicketUpdateSerializer, request.data)
        tags = data.pop("tags", None)
        if "category" in data:
            data["category"] = intake.category_by_code(data["category"])
        with transaction.atomic():
            services.update_ticket(ticket=ticket, changes=data, actor=request.user)
            if tags is not None:
                services.set_tag_names(ticket=ticket, names=tags, actor=request.user)
        return self._render(ticket)

    @extend_schema(request=TransitionSerializer, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, reference: str) -> Response:
        """Move the ticket to another status; 409 if the status machine forbids it."""
        ticket = self.get_object()
        data = self._valid(TransitionSerializer, request.data)
        services.change_status(ticket=ticket, status=data["status"], reason=data["reason"], actor=request.user)
        return self._render(ticket)

    @extend_schema(methods=["GET"], responses=MessageSerializer(many=True))
    @extend_schema(methods=["POST"], request=MessageCreateSerializer, responses={201: MessageSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=MessagePagination, filter_backends=[])
    def messages(self, request: Request, reference: str) -> Response:
        """The conversation, oldest first; POST adds a customer message or an agent reply."""
        ticket = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(queries.conversation(ticket).select_related("author_agent__user"))
            return self.get_paginated_response(MessageSerializer(page, many=True, context=self._shown(ticket)).data)
        data = self._valid(MessageCreateSerializer, request.data)
        agent = data.get("agent")
        own = agent_of(request.user)
        if data["author"] == Message.AuthorKind.AGENT and agent is None:
            agent = own
            if agent is None:
                raise DomainError("required", _("Name the replying agent (you have no agent profile)."), field="agent")
        # Integrations post replies for the agents of their platform; an agent speaks only for themselves.
        if agent is not None and agent != own and not sees_everything(request.user):
            raise DomainError("forbidden", _("You may only reply as yourself."), field="agent")
        message = services.post_message(
            ticket=ticket, author_kind=data["author"], body=data["body"], agent=agent, internal=data["internal"],
            sent_at=data.get("sent_at"), channel_message_id=data["external_id"], attachments=data["attachments"],
            status_after=data.get("status"), actor=request.user,
        )
        message = Message.objects.select_related("author_agent__user").get(pk=message.pk)
        return Response(MessageSerializer(message, context=self._shown(ticket)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, reference: str) -> Response:
        """The calling agent takes the ticket; 409 if someone else has it (of two at once, one wins)."""
        ticket = self.get_object()
        agent = agent_of(request.user)
        if agent is None:
            raise DomainError("not_an_agent", _("Only an agent can claim a ticket."))
        return self._render(routing.claim_ticket(ticket=ticket, agent=agent, actor=request.user))

    @extend_schema(request=EscalateSerializer, responses={201: EscalationSerializer})
    @action(detail=True, methods=["post"])
    def escalate(self, request: Request, reference: str) -> Response:
        """Hand the ticket to another department (on hold for them, under their response target)."""
        ticket = self.get_object()
        data = self._valid(EscalateSerializer, request.data)
        escalation = services.escalate_ticket(ticket=ticket, team=data["team"], reason=data["reason"], actor=request.user)
        return Response(EscalationSerializer(self._escalations(ticket).get(pk=escalation.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=HandBackSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"], url_path="hand-back")
    def hand_back(self, request: Request, reference: str) -> Response:
        """The escalated team hands the ticket back to the team that escalated it."""
        ticket = self.get_object()
        data = self._valid(HandBackSerializer, request.data)
        escalation = services.hand_back_ticket(ticket=ticket, note=data["note"], actor=request.user)
        return Response(EscalationSerializer(self._escalations(ticket).get(pk=escalation.pk)).data)

    @extend_schema(responses=EscalationSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=EscalationPagination, filter_backends=[])
    def escalations(self, request: Request, reference: str) -> Response:
        """Every escalation of the ticket, automatic (SLA levels) and manual, oldest first."""
        page = self.paginate_queryset(self._escalations(self.get_object()))
        return self.get_paginated_response(EscalationSerializer(page, many=True).data)

    @staticmethod
    def _escalations(ticket: Ticket) -> QuerySet[Escalation]:
        return ticket.escalations.select_related("clock", "from_team", "to_team", "created_by")

    def _shown(self, ticket: Ticket) -> dict[str, Any]:
        """The messages' serializer context: the conversation as the caller may read it."""
        hidden = bool(queries.hidden_customers(self.request.user, [ticket]))
        return {"shown_text": text_shown_to(self.request.user, ticket.customer_id, hidden)}

    def _valid(self, serializer_class: type, data: Any) -> dict[str, Any]:
        serializer = serializer_class(data=data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)



class CustomerTicketsView(mixins.ListModelMixin, ApiViewSet):
    """A customer's tickets that the caller may see, newest first."""

    serializer_class = TicketSerializer
    permission_model = Ticket

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], list):
            kwargs["context"] = page_context(self.request.user, args[0], self.get_serializer_context())
        return super().get_serializer(*args, **kwargs)

    def get_queryset(self) -> QuerySet[Ticket]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no URL kwargs
            return Ticket.objects.none()
        return list_queryset(queries.visible_to(self.request.user).filter(customer_id=self.kwargs["customer_id"]))


class IngestView(IdempotentPostMixin, APIView):
    """A chat platform pushes one customer message by channel and conversation id.

    It reaches any conversation, so it needs its own permission (API Client, Administrator).
    """

    permission_classes = [IsAuthenticated, KeyScope, HasPermission("tickets.ingest_messages")]

    @extend_schema(request=IngestSerializer, responses={201: IngestResultSerializer, 200: IngestResultSerializer})
    def post(self, request: Request) -> Response:
        serializer = IngestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = intake.ingest_message(
            channel=data["channel"], conversation_id=data["conversation_id"], customer=data["customer"],
            subject=data["subject"], body=data["message"]["body"], sent_at=data["message"].get("sent_at"),
            external_id=data["message"]["external_id"], attachments=data["message"]["attachments"], actor=request.user,
        )
        ticket = list_queryset(Ticket.objects.filter(pk=result.ticket.pk)).get()
        body = {
            "ticket": TicketSerializer(ticket, context={"user": request.user}).data,
            "message": MessageSerializer(
                result.message,
                context={"shown_text": text_shown_to(request.user, ticket.customer_id,
                                                     bool(queries.hidden_customers(request.user, [ticket])))},
            ).data,
            "ticket_created": result.ticket_created,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.ticket_created else status.HTTP_200_OK)
