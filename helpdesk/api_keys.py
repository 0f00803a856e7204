"""API keys: made once, shown once, stored as a SHA-256 hash, looked up by their prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import roles
from .errors import DomainError
from .models import ApiKey

KEY_PREFIX = "hd_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long a key's user's permissions and roles are cached: a role change reaches API keys
# within this time (revoking the key itself takes effect at once).
PERMISSION_CACHE_SECONDS = 60


def _hash(secret: str) -> str:
    # The secret is 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def create_api_key(*, name: str, scope: str, user: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Make a key; returns it with the plain key, which is never stored and cannot be shown again.

    Without `user`, the key acts as a new integration user in the API Client role.
    """
    name = name.strip()
    if not name:
        raise DomainError("required", _("An API key needs a name."), field="name")
    if scope not in ApiKey.Scope.values:
        raise DomainError("invalid_scope", _("Scope must be read or write."), field="scope")
    if user is None:
        username = f"api-{name}"[:150]
        if User.objects.filter(username=username).exists():
            raise DomainError("duplicate", _("An integration named “%s” exists already.") % name, field="name")
        user = User.objects.create(username=username, is_staff=False)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=roles.API_CLIENT))
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name, user=user, prefix=prefix, key_hash=_hash(secret), scope=scope
    )
    return api_key, f"{KEY_PREFIX}{prefix}_{secret}"


def key_for(plain: str) -> ApiKey | None:
    """The active key `plain` names, or None; records its use at most once a minute."""
    if not plain.startswith(KEY_PREFIX):
        return None
    prefix, _sep, secret = plain.removeprefix(KEY_PREFIX).partition("_")
    if not secret:
        return None
    api_key = ApiKey.objects.select_related("user__agent").filter(prefix=prefix, revoked_at=None).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(secret)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    _load_permissions(api_key.user)
    return api_key


def _load_permissions(user: User) -> None:
    """Fill the user's permission and role caches from the shared cache (3 queries saved a request)."""
    cache_key = f"helpdesk:api-user-perms:{user.pk}"
    cached = cache.get(cache_key)
    if cached is None:
        cached = (set(user.get_all_permissions()), set(user.groups.values_list("name", flat=True)))
        cache.set(cache_key, cached, PERMISSION_CACHE_SECONDS)
    user._perm_cache, user._helpdesk_roles = cached


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    """Revoke at once; a revoked key is refused on its next request. Revoking twice is harmless."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(revoked_at=timezone.now())
    api_key.refresh_from_db()
    return api_key
