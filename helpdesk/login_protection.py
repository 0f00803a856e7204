"""Login protection (django-axes): where a login comes from, how the logs name it, and the page
a locked-out login gets. Settings AXES_CLIENT_IP_CALLABLE, AXES_CLIENT_STR_CALLABLE and
AXES_LOCKOUT_CALLABLE point here; the rest of the configuration is in config/settings.py.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from axes.helpers import get_client_parameters, get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework.throttling import BaseThrottle

LOCKED_STATUS = 429  # Too Many Requests, as axes answers by default


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, read exactly as the API's throttle reads it (REST_FRAMEWORK
    NUM_PROXIES): behind the one trusted proxy (BEHIND_TLS_PROXY) the last X-Forwarded-For hop,
    the one that proxy appended; otherwise REMOTE_ADDR. Reading the header without a proxy
    would let a caller name a new address, and so start a new count, on every attempt."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        # A malformed hop (or no proxy where one was promised): count against the peer, which
        # the caller cannot choose, and never store a non-address in axes' address column.
        return request.META.get("REMOTE_ADDR") or None


def client_str(username: str | None, ip_address: str | None, user_agent: str, path_info: Any, request: Any) -> str:
    """How axes' log lines name a login: the address, the page, and the username only when it is
    an account's. A failed "username" is now and then a password typed into the wrong box, and
    a password must never reach the logs."""
    known = bool(username) and get_user_model()._default_manager.filter(
        **{get_user_model().USERNAME_FIELD: username}
    ).exists()
    shown = username if known else "(not an account)"
    if isinstance(path_info, (list, tuple)):
        path_info = path_info[0] if path_info else ""
    return f'{{username: "{shown}", ip_address: "{ip_address}", path_info: "{path_info}"}}'


def lockout_minutes(request: HttpRequest, credentials: Any = None) -> int | None:
    """Whole minutes until the lock ends, or None for a lock without end (no cool-off).

    Attempts while locked are not recorded (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off),
    so the lock ends a cool-off after the newest recorded failure of this login: the newest of
    the rows axes counts for it (for several rows, an upper bound). It reads the same rows
    whether or not the username is an account's.
    """
    cool_off = get_cool_off(request)
    if not cool_off:
        return None
    username = get_client_username(request, credentials)
    counted = Q()
    for lookup in get_client_parameters(
        username, getattr(request, "axes_ip_address", None), getattr(request, "axes_user_agent", ""), request, credentials
    ):
        counted |= Q(**lookup)
    newest = AccessAttempt.objects.filter(counted).aggregate(newest=Max("attempt_time"))["newest"]
    now = timezone.now()
    left = (newest or now) + cool_off - now
    return max(1, math.ceil(left.total_seconds() / 60))


def lockout_message(minutes: int | None) -> str:
    if minutes is None:
        return _("Too many failed login attempts: signing in is locked. Ask an administrator to unlock it.")
    return ngettext(
        "Too many failed login attempts: signing in is locked for %(minutes)d minute. "
        "To sign in sooner, ask an administrator to unlock it.",
        "Too many failed login attempts: signing in is locked for %(minutes)d minutes. "
        "To sign in sooner, ask an administrator to unlock it.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None) -> HttpResponse:
    """The login page's answer to a locked-out login: 429, for how long, and whom to ask.

    The page names no user and reads no account: axes counts failures for any username, so a
    locked name that exists and one that does not get the same page, which tells nobody which
    accounts there are. Rendered here (not a TemplateResponse): it replaces the view's response
    in the middleware, after responses are rendered.
    """
    context = {
        **admin.site.each_context(request),
        "title": _("Signing in is locked"),
        "message": lockout_message(lockout_minutes(request, credentials)),
    }
    return render(request, "admin/helpdesk/login_locked.html", context, status=LOCKED_STATUS)
