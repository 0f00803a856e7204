"""Filters of the ticket list; each has an index in the list's default order (Ticket.Meta)."""

from __future__ import annotations

from datetime import datetime

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from helpdesk.api.fields import IdFilter, UtcDateTimeFilter
from helpdesk.models import Channel

from ..models import SlaClock, Ticket
from ..queries import search


class TicketFilter(django_filters.FilterSet):
    # distinct=False: these filter the ticket's own columns, so no row can repeat, and a
    # DISTINCT would sort every matching row before the page is cut.
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices, distinct=False)
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=Ticket.Priority.choices, distinct=False)
    team = IdFilter(field_name="team_id")
    assignee = IdFilter(field_name="assignee_id")
    customer = IdFilter(field_name="customer_id")
    category = django_filters.CharFilter(field_name="category__code")
    external_id = django_filters.CharFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gt")
    q = django_filters.CharFilter(method="search", label="Reference or words of the subject")
    sla_breached = django_filters.BooleanFilter(method="breached", label="Has (true) or has not (false) breached a target")
    sla_due_before = UtcDateTimeFilter(method="due_before", label="A running, unpaused target falls due before this instant")

    class Meta:
        model = Ticket
        fields = ["status", "channel", "priority", "team", "assignee", "customer", "category", "external_id"]

    def search(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        # The subject as the caller reads it: masked text never matches on what it masks.
        return search(self.request.user, queryset, value, conversation=False)

    def breached(self, queryset: QuerySet[Ticket], name: str, value: bool | None) -> QuerySet[Ticket]:
        if value is None:
            return queryset
        breached = Exists(SlaClock.objects.filter(ticket=OuterRef("pk"), breached_at__isnull=False))
        return queryset.filter(breached if value else ~breached)

    def due_before(self, queryset: QuerySet[Ticket], name: str, value: datetime | None) -> QuerySet[Ticket]:
        if value is None:
            return queryset
        running = SlaClock.objects.filter(fulfilled_at=None, stopped_at=None, paused_at=None, due_at__lt=value)
        return queryset.filter(pk__in=running.values("ticket_id"))
