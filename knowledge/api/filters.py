"""Filters of the article list."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db.models import QuerySet

from ..models import Article, Audience, KbCategory

# Filters that tell drafts from live articles and internal from public ones: staff only.
STAFF_FILTERS = frozenset({"status", "audience"})


def category_and_below(slug: str) -> list[int]:
    """The category's id and its descendants' ids, in one query (the tree is small)."""
    rows = list(KbCategory.objects.values_list("pk", "parent_id", "slug"))
    children: dict[int | None, list[int]] = {}
    for pk, parent_id, _slug in rows:
        children.setdefault(parent_id, []).append(pk)
    found = [pk for pk, _parent, row_slug in rows if row_slug == slug]
    for pk in found:  # grows while it is walked: a breadth-first walk down the tree
        found.extend(child for child in children.get(pk, []) if child not in found)
    return found


class ArticleFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(method="in_category", label="Category slug; its subcategories are included")
    tag = django_filters.CharFilter(field_name="tags__name", label="Tag name", distinct=False)  # names are unique
    language = django_filters.ChoiceFilter(choices=settings.LANGUAGES)
    audience = django_filters.ChoiceFilter(choices=Audience.choices, label="Staff only")
    status = django_filters.ChoiceFilter(choices=Article.Status.choices, label="Staff only")

    class Meta:
        model = Article
        fields = ["category", "tag", "language", "audience", "status"]

    def in_category(self, queryset: QuerySet[Article], name: str, value: str) -> QuerySet[Article]:
        value = value.strip()
        return queryset.filter(category_id__in=category_and_below(value)) if value else queryset
