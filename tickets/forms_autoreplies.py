"""The automatic reply rule form: channels as boxes to tick, and a body whose placeholders exist."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from helpdesk.models import Channel

from .autoreplies import PLACEHOLDERS, SKIPPED_CHANNELS, unknown_placeholders
from .models import AutoReplyRule


class AutoReplyRuleForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=[(value, label) for value, label in Channel.choices if value not in SKIPPED_CHANNELS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel. Phone calls never get automatic replies."),
    )

    class Meta:
        model = AutoReplyRule
        fields = ["name", "is_active", "trigger", "channels", "language", "calendar", "body"]

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        unknown = unknown_placeholders(body)
        if unknown:
            raise forms.ValidationError(
                ngettext(
                    "Unknown placeholder %(names)s; use %(known)s.",
                    "Unknown placeholders %(names)s; use %(known)s.",
                    len(unknown),
                ),
                code="unknown_placeholder",
                params={"names": ", ".join(unknown), "known": ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)},
            )
        return body
