"""Authentication, permissions and throttling shared by every API view."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from helpdesk.api_keys import key_for
from helpdesk.models import ApiKey

from . import auth_failures


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer hd_…`: the request acts as the key's user.

    Failures are throttled per address and key prefix (helpdesk.api.auth_failures): a locked
    caller gets 429 with Retry-After before its key is even looked up.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _sep, plain = header.partition(" ")
        if keyword != self.keyword:
            return None
        plain = plain.strip()
        who = auth_failures.caller(request, plain)
        wait = auth_failures.locked_for(who)
        if wait is not None:
            raise exceptions.Throttled(wait, str(_("Too many failed authentications from this address or with this key.")))
        api_key = key_for(plain)
        if api_key is None or not api_key.user.is_active:
            auth_failures.record_failure(who, request)
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class KeyScope(permissions.BasePermission):
    """A read-only key may only read."""

    message = _("This API key is read-only.")

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey) and request.auth.scope == ApiKey.Scope.READ:
            return request.method in permissions.SAFE_METHODS
        return True


class RolePermissions(permissions.DjangoModelPermissions):
    """The same Django permissions as the admin, reading included.

    A view may name the permission of an action itself (ApiViewSet.action_permissions);
    None there means any authenticated user, the view then checks the object itself.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if hasattr(view, "required_permission"):
            overridden, perm = view.required_permission(request)
            if overridden:
                return perm is None or request.user.has_perm(perm)
        if getattr(view, "permission_model", None) is not None:
            model = view.permission_model
            perms = self.get_required_permissions(request.method, model)
            return request.user.has_perms(perms)
        return super().has_permission(request, view)


def HasPermission(perm: str) -> type[permissions.BasePermission]:  # noqa: N802 - used like a class
    """A permission class requiring one Django permission, for views that are not about a model."""

    class _HasPermission(permissions.BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            return bool(request.user and request.user.has_perm(perm))

    _HasPermission.__name__ = f"HasPermission({perm})"
    return _HasPermission


class PerClientThrottle(throttling.SimpleRateThrottle):
    """A request budget per API key (or per user for session and personal use)."""

    scope = "client"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes the API key to OpenAPI, so /api/docs/ offers an "Authorize" button for it."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer hd_…"}
