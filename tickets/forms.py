"""Forms of the staff admin: the reply box, the new-ticket form and the bulk actions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from helpdesk.models import Agent, Channel

from .models import Ticket
from .transitions import next_statuses


class ReplyForm(forms.Form):
    """A public reply or an internal note, and the status the ticket should take after it."""

    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 5}))
    internal = forms.BooleanField(label=_("Internal note (the customer does not see it)"), required=False)
    status_after = forms.ChoiceField(label=_("Then set status to"), required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status_after"].choices = [("", _("(keep as it is)")), *next_statuses(ticket.status)]

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError(_("A message cannot be empty."))
        return body


class TicketCreationForm(forms.ModelForm):
    """A ticket an agent opens by hand (a phone call, a walk-in) with the customer's words."""

    message = forms.CharField(
        label=_("Customer's message"),
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("What the customer asked, as the first message of the conversation."),
    )

    class Meta:
        model = Ticket
        fields = ["customer", "subject", "channel", "category", "priority", "team", "assignee"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].initial = Channel.PHONE


class TicketChangeForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = ["subject", "category", "priority", "team", "assignee", "tags"]

    def clean(self) -> dict:
        # The ticket may have been closed (by a colleague or the auto-close sweep) while
        # this form was open; a closed ticket is not edited.
        if Ticket.objects.filter(pk=self.instance.pk, status=Ticket.Status.CLOSED).exists():
            raise forms.ValidationError(_("The ticket was closed meanwhile; it can no longer be changed."))
        return super().clean()


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(
        label=_("Agent"), queryset=Agent.objects.order_by("display_name"), required=False,
        empty_label=_("(nobody: unassign)"),
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"), choices=Ticket.Status.choices)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)


class TagForm(forms.Form):
    tags = forms.CharField(
        label=_("Tags"), max_length=500, help_text=_("Separate tags with commas.")
    )

    def clean_tags(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["tags"].replace("，", ",").split(",")]
        names = [name for name in names if name]
        if not names:
            raise forms.ValidationError(_("Give at least one tag."))
        return names


__all__ = ["AssignForm", "ReplyForm", "StatusForm", "TagForm", "TicketChangeForm", "TicketCreationForm"]
