"""Admin for routing rules: where new tickets go, in order, first match wins."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from helpdesk.admin_history import AuditedAdmin
from helpdesk.models import Channel, Customer

from . import routing
from .models import RoutingRule

WEEKDAYS = [
    (1, _("Monday")), (2, _("Tuesday")), (3, _("Wednesday")), (4, _("Thursday")),
    (5, _("Friday")), (6, _("Saturday")), (7, _("Sunday")),
]


class RoutingRuleForm(forms.ModelForm):
    """Conditions as ticks: the model keeps them as lists of codes."""

    channels = forms.MultipleChoiceField(
        label=_("channels"), choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any channel."),
    )
    tiers = forms.MultipleChoiceField(
        label=_("customer tiers"), choices=Customer.Tier.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any tier."),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("weekdays"), choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every day."),
    )

    class Meta:
        model = RoutingRule
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (data.get("starts_at") is None) != (data.get("ends_at") is None):
            self.add_error("ends_at", _("Give both ends of the time window, or neither."))
        if data.get("suggested_category") and not (data.get("keywords") or "").strip():
            self.add_error("keywords", _("A category is suggested from keywords: give at least one."))
        return data


@admin.register(RoutingRule)
class RoutingRuleAdmin(AuditedAdmin):
    form = RoutingRuleForm
    list_display = ["name", "position", "is_active", "team", "skill", "suggested_category", "starts_at", "ends_at"]
    list_editable = ["position", "is_active"]
    list_select_related = ["team", "skill", "suggested_category"]
    list_filter = ["is_active", "team"]
    search_fields = ["name", "keywords"]
    filter_horizontal = ["categories"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        routing.forget_rules()  # this process at once; the others within routing.RULES_SECONDS
