"""Shapes of the knowledge-base API. Output is the copy the caller may read (knowledge.api.access)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from helpdesk.api.fields import TextField

from tickets.api.serializers import TeamRefSerializer

from ..models import Article, CannedReply
from ..rendering import to_html


class KbCategoryRefSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class KbArticleSerializer(serializers.Serializer):
    """An article as a list shows it: the live copy where one exists, the working copy else.

    Public callers (context "public") only ever get live articles; for them `status` is
    "published" and `updated_at` the time of publishing, so nothing tells them that an
    unreviewed change is waiting.
    """

    slug = serializers.CharField(read_only=True)
    title = serializers.CharField(source="shown_title", read_only=True)
    language = serializers.CharField(read_only=True)
    audience = serializers.CharField(source="shown_audience", read_only=True, help_text="internal or public")
    status = serializers.CharField(read_only=True, help_text="draft, in_review or published")
    live = serializers.BooleanField(source="is_live", read_only=True, help_text="A reviewed version is shown to readers.")
    category = KbCategoryRefSerializer(read_only=True, allow_null=True)
    tags = serializers.SerializerMethodField()
    helpful_count = serializers.IntegerField(read_only=True)
    unhelpful_count = serializers.IntegerField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_tags(self, article: Article) -> list[str]:
        return [tag.name for tag in article.tags.all()]  # prefetched: no query per article

    def to_representation(self, article: Article) -> dict[str, Any]:
        data = super().to_representation(article)
        if self.context.get("public"):
            data["status"] = Article.Status.PUBLISHED.value
            data["updated_at"] = data["published_at"]
        return data


class KbArticleDetailSerializer(KbArticleSerializer):
    html = serializers.SerializerMethodField(help_text="The body rendered as safe HTML.")

    def get_html(self, article: Article) -> str:
        # A draft that was never published has no live copy yet: staff read its working copy.
        return article.live_html if article.is_live else to_html(article.body)


class KbFeedbackSerializer(serializers.Serializer):
    helpful = serializers.BooleanField()
    comment = TextField(required=False, default="", allow_blank=True, max_length=500)


class KbFeedbackResultSerializer(serializers.Serializer):
    helpful = serializers.BooleanField()
    helpful_count = serializers.IntegerField()
    unhelpful_count = serializers.IntegerField()


class KbSearchQuerySerializer(serializers.Serializer):
    q = TextField(max_length=200, help_text="Words in Chinese, English or both.")
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)


class KbSearchHitSerializer(serializers.Serializer):
    slug = TextField()
    title = TextField()
    snippet = TextField(help_text="HTML: the text escaped, the query's words in <mark>.")
    score = serializers.FloatField()


class KbSearchResultsSerializer(serializers.Serializer):
    results = KbSearchHitSerializer(many=True, help_text="Best first.")


class CannedReplySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    shortcut = serializers.CharField(read_only=True)
    language = serializers.CharField(read_only=True)
    team = TeamRefSerializer(read_only=True, allow_null=True, help_text="null: every team may use it.")
    body = serializers.SerializerMethodField(help_text="With ?ticket=, the placeholders filled for that ticket.")

    def get_body(self, reply: CannedReply) -> str:
        return self.context.get("bodies", {}).get(reply.pk, reply.body)
