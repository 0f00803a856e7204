"""Filters of the ticket list; each has an index in the list's default order (Ticket.Meta)."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from helpdesk.api.fields import IdFilter, UtcDateTimeFilter
from helpdesk.models import Channel

from ..models import Ticket


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

    class Meta:
        model = Ticket
        fields = ["status", "channel", "priority", "team", "assignee", "customer", "category", "external_id"]

    def search(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        value = value.strip()
        if not value:
            return queryset
        pk = Ticket.pk_from_reference(value)
        if pk is not None and not value.isdigit():
            return queryset.filter(pk=pk)
        condition = Q(subject__icontains=value)
        if pk is not None:
            condition |= Q(pk=pk)
        return queryset.filter(condition)
