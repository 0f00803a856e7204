"""Report subscriptions in the admin: who gets the weekly and monthly report by email.

`last_period_sent` is written only by tickets.report_mail; the action "Send the last period
now" sends a test copy without touching it.
"""

from __future__ import annotations

import logging
from smtplib import SMTPException

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from helpdesk.admin_history import AuditedAdmin

from . import report_mail
from .models import ReportSubscription

logger = logging.getLogger(__name__)


class ReportSubscriptionForm(forms.ModelForm):
    class Meta:
        model = ReportSubscription
        fields = ["name", "frequency", "team", "language", "recipients", "is_active"]
        widgets = {"recipients": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def clean_recipients(self) -> str:
        """One valid address a line; every bad line is named, with its number."""
        errors = []
        for number, line in enumerate(self.cleaned_data["recipients"].splitlines(), start=1):
            address = line.strip()
            if not address:
                continue
            try:
                validate_email(address)
            except ValidationError:
                errors.append(ValidationError(
                    _("Line %(line)d: “%(address)s” is not a valid email address."),
                    code="invalid_email", params={"line": number, "address": address},
                ))
        if errors:
            raise ValidationError(errors)
        addresses = report_mail.recipient_addresses(self.cleaned_data["recipients"])
        if not addresses:
            raise ValidationError(_("Give at least one email address."), code="required")
        return "\n".join(addresses)


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(AuditedAdmin):
    form = ReportSubscriptionForm
    list_display = ["name", "frequency", "team", "language", "is_active", "last_period_sent"]
    list_filter = ["frequency", "is_active", "language", "team"]
    list_select_related = ["team"]
    search_fields = ["name", "recipients"]
    readonly_fields = ["last_period_sent"]
    actions = ["send_last_period_now"]

    @admin.action(description=gettext_lazy("Send the last period now"), permissions=["change"])
    def send_last_period_now(self, request: HttpRequest, queryset: QuerySet[ReportSubscription]) -> None:
        sent = 0
        for subscription in queryset.select_related("team").order_by("pk"):
            try:
                report_mail.send_last_period_now(subscription=subscription)
            except (SMTPException, OSError) as exc:
                logger.warning("test report of subscription %s not sent: %s", subscription.pk, exc)
                self.message_user(
                    request,
                    _("“%(name)s” could not be sent: %(error)s") % {"name": subscription.name, "error": exc},
                    messages.ERROR,
                )
            else:
                sent += 1
        if sent:
            self.message_user(
                request,
                ngettext(
                    "Sent the last period's report of %(count)d subscription to its recipients.",
                    "Sent the last period's reports of %(count)d subscriptions to their recipients.",
                    sent,
                ) % {"count": sent},
                messages.SUCCESS,
            )
