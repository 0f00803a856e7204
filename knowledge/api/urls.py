"""The knowledge base under /api/v1/ (included by config.api_urls)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ArticleViewSet, CannedReplyViewSet, SearchView

router = SimpleRouter()
router.trailing_slash = "/?"  # as in config.api_urls: integrators write either
router.register("kb/articles", ArticleViewSet, basename="kb-article")
router.register("canned-replies", CannedReplyViewSet, basename="canned-reply")

urlpatterns = [
    path("kb/search", SearchView.as_view(), name="kb-search"),
    *router.urls,
]
