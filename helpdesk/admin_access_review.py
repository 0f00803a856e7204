"""The access review in the admin: /admin/auth/user/access-review/ (the page), and
access-review/users.csv, access-review/api-keys.csv (the same rows as files). Linked from the
user list; administrators only (helpdesk.roles.is_administrator), everyone else gets 403.
HelpdeskUserAdmin.get_urls adds the URLs. The rows are helpdesk.access_review's.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import access_review
from .roles import is_administrator


def _review(request: HttpRequest) -> tuple[access_review.AccessReview, bool]:
    if not is_administrator(request.user):
        raise PermissionDenied
    return access_review.access_review(), request.GET.get("flagged") == "1"


def _shown(rows: list, only_flagged: bool) -> list:
    return [row for row in rows if row.flags] if only_flagged else rows


def review_view(request: HttpRequest) -> HttpResponse:
    review, only_flagged = _review(request)
    labels = access_review.flag_labels(review.stale_days)
    query = "?flagged=1" if only_flagged else ""
    context = {
        **admin.site.each_context(request),
        "title": _("Access review"),
        "opts": get_user_model()._meta,
        "review": review,
        "counts": review.counts(),
        "only_flagged": only_flagged,
        "users": [(row, [labels[flag] for flag in row.flags]) for row in _shown(review.users, only_flagged)],
        "keys": [(row, [labels[flag] for flag in row.flags]) for row in _shown(review.keys, only_flagged)],
        "users_csv_url": reverse("admin:access-review-users-csv") + query,
        "keys_csv_url": reverse("admin:access-review-keys-csv") + query,
    }
    return TemplateResponse(request, "admin/helpdesk/access_review.html", context)


def _download(body: bytes, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}_{timezone.localdate():%Y-%m-%d}.csv"'
    return response


def users_csv_view(request: HttpRequest) -> HttpResponse:
    review, only_flagged = _review(request)
    return _download(access_review.users_csv(review, _shown(review.users, only_flagged)), "access_review_users")


def keys_csv_view(request: HttpRequest) -> HttpResponse:
    review, only_flagged = _review(request)
    return _download(access_review.keys_csv(review, _shown(review.keys, only_flagged)), "access_review_api_keys")


def access_review_urls() -> list[URLPattern]:
    return [
        path("access-review/", admin.site.admin_view(review_view), name="access-review"),
        path("access-review/users.csv", admin.site.admin_view(users_csv_view), name="access-review-users-csv"),
        path("access-review/api-keys.csv", admin.site.admin_view(keys_csv_view), name="access-review-keys-csv"),
    ]
