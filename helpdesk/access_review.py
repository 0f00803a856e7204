"""The access review: who can reach the helpdesk, for administrators to check regularly.

Every user who can sign in (active staff or superuser) or holds an API key that still works,
and every API key, with what deserves a second look flagged: staff who have not signed in for
ACCESS_REVIEW_STALE_DAYS (or never, and joined longer ago), superusers, permissions granted to
a user directly rather than through a role, keys not revoked and unused for that long. The
page and its CSV files (helpdesk.admin_access_review) and the monthly reminder
(remind_access_review) read the same rows, in a fixed number of queries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Agent, ApiKey, Notification
from .notifications import administrators, in_default_language, notify

# Flag codes; labels are looked up when shown (never store a translated label).
STALE_LOGIN = "stale_login"
SUPERUSER = "superuser"
DIRECT_PERMISSIONS = "direct_permissions"
UNUSED_KEY = "unused_key"


def flag_labels(days: int) -> dict[str, str]:
    """What each flag says, in the active language (the page's badges, the CSV's flag columns)."""
    return {
        STALE_LOGIN: _("No login for %(days)d days") % {"days": days},
        SUPERUSER: _("Superuser"),
        DIRECT_PERMISSIONS: _("Permissions outside roles"),
        UNUSED_KEY: _("Unused for %(days)d days") % {"days": days},
    }


@dataclass(frozen=True)
class UserRow:
    user: Any
    roles: tuple[str, ...]
    teams: tuple[str, ...]
    direct_permissions: tuple[str, ...]  # "app_label.codename"
    days_since_login: int | None  # None: never signed in
    flags: tuple[str, ...]


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    roles: tuple[str, ...]  # the acting user's
    days_since_use: int | None  # None: never used
    flags: tuple[str, ...]


@dataclass(frozen=True)
class AccessReview:
    now: datetime
    stale_days: int
    users: list[UserRow]
    keys: list[KeyRow]

    def counts(self) -> dict[str, int]:
        def having(rows: Iterable[UserRow | KeyRow], flag: str) -> int:
            return sum(1 for row in rows if flag in row.flags)

        return {
            "users": len(self.users),
            "staff": sum(1 for row in self.users if row.user.is_staff),
            "superusers": having(self.users, SUPERUSER),
            "stale_users": having(self.users, STALE_LOGIN),
            "direct_permissions": having(self.users, DIRECT_PERMISSIONS),
            "flagged_users": sum(1 for row in self.users if row.flags),
            "keys": len(self.keys),
            "active_keys": sum(1 for row in self.keys if row.key.revoked_at is None),
            "unused_keys": having(self.keys, UNUSED_KEY),
            "flagged_keys": sum(1 for row in self.keys if row.flags),
        }


def reviewed_users() -> QuerySet:
    """Users who can sign in to the admin, or act through a key that is not revoked (a key of an
    inactive user is refused today, but would work again if the user were reactivated)."""
    working_key = ApiKey.objects.filter(user=OuterRef("pk"), revoked_at=None)
    return (
        get_user_model()
        .objects.filter(Q(is_active=True) & (Q(is_staff=True) | Q(is_superuser=True)) | Exists(working_key))
        .select_related("agent")
        .prefetch_related(
            "groups",
            Prefetch("user_permissions", queryset=Permission.objects.select_related("content_type")),
            "agent__teams",
        )
        .order_by("username")
    )


def reviewed_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("user").prefetch_related("user__groups").order_by("name", "pk")


def _days_since(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, (now - then).days)


def _user_row(user: Any, now: datetime, cutoff: datetime) -> UserRow:
    try:
        agent: Agent | None = user.agent
    except Agent.DoesNotExist:
        agent = None
    direct = tuple(sorted(f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all()))
    flags = []
    # A login is what staff are for; integration users (not staff) only use keys, flagged below.
    if user.is_staff and (user.last_login or user.date_joined) <= cutoff:
        flags.append(STALE_LOGIN)
    if user.is_superuser:
        flags.append(SUPERUSER)
    if direct:
        flags.append(DIRECT_PERMISSIONS)
    return UserRow(
        user=user,
        roles=tuple(sorted(group.name for group in user.groups.all())),
        teams=tuple(sorted(team.name for team in agent.teams.all())) if agent else (),
        direct_permissions=direct,
        days_since_login=_days_since(now, user.last_login),
        flags=tuple(flags),
    )


def _key_row(key: ApiKey, now: datetime, cutoff: datetime) -> KeyRow:
    unused = key.revoked_at is None and (key.last_used_at or key.created_at) <= cutoff
    return KeyRow(
        key=key,
        roles=tuple(sorted(group.name for group in key.user.groups.all())),
        days_since_use=_days_since(now, key.last_used_at),
        flags=(UNUSED_KEY,) if unused else (),
    )


def access_review(*, now: datetime | None = None, stale_days: int | None = None) -> AccessReview:
    """Every reviewed user and every API key with their flags: 6 queries, whatever their number."""
    now = now or timezone.now()
    stale_days = settings.ACCESS_REVIEW_STALE_DAYS if stale_days is None else stale_days
    cutoff = now - timedelta(days=stale_days)
    return AccessReview(
        now=now,
        stale_days=stale_days,
        users=[_user_row(user, now, cutoff) for user in reviewed_users()],
        keys=[_key_row(key, now, cutoff) for key in reviewed_keys()],
    )


# --- CSV ------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A text a spreadsheet would run as a formula gets a leading apostrophe (CSV injection):
    usernames and key names are typed by people."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _yes(value: bool) -> str:
    return _("yes") if value else _("no")


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")  # the BOM: Excel then reads UTF-8 (Chinese names)


def users_csv(review: AccessReview, rows: Iterable[UserRow]) -> bytes:
    """The users table in the active language, flags as yes/no columns; times in TIME_ZONE."""
    labels = flag_labels(review.stale_days)
    header = [
        _("Username"), _("Name"), _("Roles"), _("Teams"), _("Staff"), _("Superuser"), _("Active"),
        _("Last login"), _("Days since login"), _("Joined"), _("Permissions granted directly"),
        *(_("Flag: %(flag)s") % {"flag": labels[flag]} for flag in (STALE_LOGIN, SUPERUSER, DIRECT_PERMISSIONS)),
    ]
    return _csv(header, (
        [
            row.user.get_username(), row.user.get_full_name(), ", ".join(row.roles), ", ".join(row.teams),
            _yes(row.user.is_staff), _yes(row.user.is_superuser), _yes(row.user.is_active),
            _when(row.user.last_login) or _("never"), "" if row.days_since_login is None else row.days_since_login,
            _when(row.user.date_joined), ", ".join(row.direct_permissions),
            *(_yes(flag in row.flags) for flag in (STALE_LOGIN, SUPERUSER, DIRECT_PERMISSIONS)),
        ]
        for row in rows
    ))


def keys_csv(review: AccessReview, rows: Iterable[KeyRow]) -> bytes:
    labels = flag_labels(review.stale_days)
    header = [
        _("Name"), _("Prefix"), _("Acts as user"), _("Roles"), _("Scope"), _("Created"), _("Last used"),
        _("Days since use"), _("Revoked"), _("Flag: %(flag)s") % {"flag": labels[UNUSED_KEY]},
    ]
    return _csv(header, (
        [
            row.key.name, row.key.prefix, row.key.user.get_username(), ", ".join(row.roles),
            row.key.get_scope_display(), _when(row.key.created_at), _when(row.key.last_used_at) or _("never"),
            "" if row.days_since_use is None else row.days_since_use, _when(row.key.revoked_at),
            _yes(UNUSED_KEY in row.flags),
        ]
        for row in rows
    ))


# --- the monthly reminder -------------------------------------------------------------------

REMINDER_KIND = "access_review"
REMINDER_TEXT = gettext_lazy(
    "Monthly access review: %(users)d users and %(keys)d API keys are flagged. Review who can "
    "reach the helpdesk at %(url)s"
)


def remind_access_review(*, now: datetime | None = None) -> int:
    """Tell each administrator, once a calendar month (TIME_ZONE), what the review flags and
    where it is. Safe to run twice: administrators told this month are skipped. Returns how
    many were told. Meant for a monthly beat entry."""
    now = now or timezone.now()
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    candidates = list(administrators().values_list("pk", flat=True))
    if not candidates:
        return 0
    counts = access_review(now=now).counts()
    text = in_default_language(
        REMINDER_TEXT, users=counts["flagged_users"], keys=counts["flagged_keys"],
        url=f"{settings.PUBLIC_URL}{reverse('admin:access-review')}",
    )
    with transaction.atomic():
        # Two beats may run this at once: the second waits for the first's locks, then sees
        # its notifications and tells nobody twice.
        users = get_user_model().objects.filter(pk__in=candidates).order_by("pk")
        list(users.select_for_update().values_list("pk", flat=True))
        # Read after the locks, in a statement of its own: it sees what a run before us committed.
        told = set(Notification.objects.filter(kind=REMINDER_KIND, created_at__gte=month_start).values_list(
            "recipient_id", flat=True))
        recipients = [user for user in users if user.pk not in told]
        if recipients:
            notify(recipients=recipients, kind=REMINDER_KIND, text=text)
    return len(recipients)
