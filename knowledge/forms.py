"""Forms of the knowledge-base admin. They check shape; the rules are knowledge.services'."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from tickets.models import Category

from . import queries
from .models import Article, CannedReply, KbCategory, SearchLog

_TAG_SEPARATORS = re.compile(r"[,，、;；]")
MAX_TAGS = 20


def split_tags(text: str) -> list[str]:
    """"退货, 售后，refund" → ["退货", "售后", "refund"]: commas of either width, once each."""
    return list(dict.fromkeys(name.strip() for name in _TAG_SEPARATORS.split(text or "") if name.strip()))


class ArticleForm(forms.ModelForm):
    """The working copy of an article. Saved by knowledge.services (create_article /
    update_article), never by the form, so a change to a published article waits for review."""

    tags = forms.CharField(
        label=capfirst(Article._meta.get_field("tags").verbose_name), required=False, max_length=1000, help_text=_("Separate tags with commas."),
    )
    slug = forms.SlugField(
        label=capfirst(Article._meta.get_field("slug").verbose_name), max_length=200, required=False, allow_unicode=True,
        help_text=_("Part of the article's address; made from the title when left empty."),
    )

    class Meta:
        model = Article
        fields = [
            "title", "slug", "body", "language", "category", "tags", "audience", "ticket_categories", "owner",
            "review_due_on",
        ]
        widgets = {"body": forms.Textarea(attrs={"rows": 18, "class": "vLargeTextField kb-body"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "slug" in self.fields:
            self.fields["slug"].required = True
            self.initial["tags"] = ", ".join(sorted(tag.name for tag in self.instance.tags.all()))
        # A reader's form (view permission only) has none of the fields: the admin shows them read-only.
        if "category" in self.fields:
            paths = queries.category_paths()
            self.fields["category"].label_from_instance = lambda node: paths.get(node.pk, node.name)
        # Active staff and active categories, and whatever the article already has.
        if "owner" in self.fields:
            staff = Q(is_staff=True, is_active=True) | Q(pk=self.instance.owner_id)
            self.fields["owner"].queryset = get_user_model().objects.filter(staff).order_by("username")
        if "ticket_categories" in self.fields:
            linked = self.instance.ticket_categories.values("pk") if self.instance.pk else []
            active = Q(is_active=True) | Q(pk__in=linked)
            self.fields["ticket_categories"].queryset = Category.objects.filter(active).order_by("position", "code")

    def clean_tags(self) -> list[str]:
        names = split_tags(self.cleaned_data["tags"])
        if len(names) > MAX_TAGS:
            raise forms.ValidationError(_("At most %d tags.") % MAX_TAGS)
        too_long = [name for name in names if len(name) > 50]
        if too_long:
            raise forms.ValidationError(_("A tag has at most 50 characters: %s") % too_long[0])
        return names

    def changes(self) -> dict[str, Any]:
        """The fields for services.update_article / create_article (relations apart)."""
        data = self.cleaned_data
        names = ["title", "body", "language", "category", "audience", "owner", "review_due_on"]
        changes = {name: data[name] for name in names}
        if data.get("slug"):
            changes["slug"] = data["slug"]
        return changes


class ReviewNoteForm(forms.Form):
    """The note a reviewer sends back (required) or leaves when publishing (optional)."""

    note = forms.CharField(label=_("Review note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    # The version the page showed: publishing refuses an article changed since.
    seen = forms.DateTimeField(required=False, widget=forms.HiddenInput)


class KbCategoryForm(forms.ModelForm):
    class Meta:
        model = KbCategory
        fields = ["name", "slug", "parent", "position"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "parent" in self.fields:
            paths = queries.category_paths()
            self.fields["parent"].label_from_instance = lambda node: paths.get(node.pk, node.name)

    def clean_parent(self) -> KbCategory | None:
        parent = self.cleaned_data["parent"]
        if parent is not None and self.instance.pk is not None and parent.pk in queries.category_descendants(self.instance):
            raise forms.ValidationError(_("A category cannot sit under itself or one of its own subcategories."))
        return parent


class CannedReplyForm(forms.ModelForm):
    """A canned reply; who edits it may only give it one of their own teams (administrators
    also none: global)."""

    class Meta:
        model = CannedReply
        fields = ["title", "shortcut", "body", "team", "language", "position", "is_active"]

    def __init__(self, *args: Any, may_be_global: bool = True, teams: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = self.fields.get("team")
        if team is None:  # a read-only page (a viewer's) has no fields
            return
        if teams is not None:
            team.queryset = team.queryset.filter(pk__in=teams)
        if not may_be_global:
            team.required = True
            team.help_text = _("One of your teams; global replies are kept by administrators.")

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        unknown = sorted(set(re.findall(r"\{([a-z_]+)\}", body)) - set(CannedReply.PLACEHOLDERS))
        if unknown:
            raise forms.ValidationError(
                _("Unknown placeholder {%(name)s}; use {customer_name}, {ticket_ref}, {agent_name} or {expected_reply_time}.")
                % {"name": unknown[0]}
            )
        return body


class GapReportForm(forms.Form):
    days = forms.IntegerField(label=_("last days"), min_value=1, max_value=queries.GAP_MAX_DAYS, initial=30)
    source = forms.ChoiceField(
        label=_("searches from"), required=False, choices=[("", _("everywhere")), *SearchLog.Source.choices],
    )


class ArticleIdsField(forms.Field):
    """The ids of the articles inserted into a reply, comma-separated (filled by assist.js)."""

    widget = forms.HiddenInput
    MAX = 20

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def to_python(self, value: Any) -> list[int]:
        parts = [part.strip() for part in str(value or "").split(",") if part.strip()]
        if not all(part.isdigit() and len(part) <= 18 for part in parts):
            raise forms.ValidationError(_("Inserted articles must be article ids separated by commas."))
        ids = list(dict.fromkeys(int(part) for part in parts))
        if len(ids) > self.MAX:
            raise forms.ValidationError(_("At most %d inserted articles.") % self.MAX)
        return ids
