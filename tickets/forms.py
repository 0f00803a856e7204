"""Forms of the staff admin: the reply box, the new-ticket form and the bulk actions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from helpdesk.models import Agent, Channel, Customer, Team
from knowledge.forms import ArticleIdsField

from .models import SlaPolicy, Ticket
from .transitions import next_statuses


class ReplyForm(forms.Form):
    """A public reply or an internal note, and the status the ticket should take after it."""

    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 5}))
    internal = forms.BooleanField(label=_("Internal note (the customer does not see it)"), required=False)
    status_after = forms.ChoiceField(label=_("Then set status to"), required=False)
    # Knowledge-base articles inserted from the suggestions: each counts as used on the ticket.
    articles = ArticleIdsField()

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


class EscalateForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Escalate to team"), queryset=Team.objects.all())
    reason = forms.CharField(label=_("Reason"), max_length=500)


class HandBackForm(forms.Form):
    note = forms.CharField(label=_("Note for the team taking it back"), max_length=400, required=False)


class SlaPolicyForm(forms.ModelForm):
    """Conditions and pause statuses as ticks: the model keeps them as lists of codes."""

    channels = forms.MultipleChoiceField(
        label=_("channels"), choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any channel."),
    )
    priorities = forms.MultipleChoiceField(
        label=_("priorities"), choices=Ticket.Priority.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any priority."),
    )
    tiers = forms.MultipleChoiceField(
        label=_("customer tiers"), choices=Customer.Tier.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any tier."),
    )
    pause_statuses = forms.MultipleChoiceField(
        label=_("statuses that pause the clocks"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(s, label) for s, label in Ticket.Status.choices if s not in (Ticket.Status.SOLVED, Ticket.Status.CLOSED)],
    )

    class Meta:
        model = SlaPolicy
        fields = "__all__"


class SlaTargetFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("business_hours") and not data.get("DELETE") and self.instance.calendar_id is None:
                form.add_error("business_hours", _("Targets in business hours need the policy's business calendar."))
