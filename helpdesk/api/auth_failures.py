"""Failed API authentication: counted, logged, audited, and throttled (429 with Retry-After).

django-axes does this for the admin's login form; API keys need the same, but axes counts
username + address for a login form, and its lockout page is the admin's. Here a failure is
counted in the cache, as DRF's throttles count requests (CACHE_URL makes it hold across
processes), in three buckets, each a sliding window of API_AUTH_LOCKOUT_MINUTES:

- the address and the key prefix it named: API_AUTH_FAILURE_LIMIT failures lock that pair only,
  so another key (another prefix) used from the same address, an office behind one NAT, works;
- the address alone, whatever prefixes: API_AUTH_FAILURE_SPREAD_LIMIT failures lock the address
  for every key (someone trying many made-up keys);
- the prefix alone, from any address: the same limit locks the key everywhere (many addresses
  guessing one key's secret). Whoever knows a prefix can so lock a key out for a while; the
  secret is 32 random bytes, so the lock is there to slow and show an attack, and an
  administrator who sees one rotates the key.

A locked caller is refused before the key is looked up, so a right secret tells nothing while
locked, and nothing is recorded (hammering writes no rows and no log lines beyond the lock).
The address is read as DRF's throttles read it (REST_FRAMEWORK NUM_PROXIES, via
helpdesk.login_protection.client_ip). Each failure is one WARNING line without the key, and one
ApiAuthFailure row, which the audit trail lists.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request

from helpdesk.api_keys import KEY_PREFIX
from helpdesk.login_protection import client_ip
from helpdesk.models import ApiAuthFailure

logger = logging.getLogger(__name__)

PREFIX_RE = re.compile(r"[0-9a-f]{8}")  # api_keys.create_api_key: secrets.token_hex(4)


@dataclass(frozen=True)
class Caller:
    address: str | None
    prefix: str  # "" when the key names no well-formed prefix

    def buckets(self) -> list[tuple[str, int]]:
        """(cache key, limit) of each count this caller's failures go to."""
        pair, spread = settings.API_AUTH_FAILURE_LIMIT, settings.API_AUTH_FAILURE_SPREAD_LIMIT
        found = [(f"helpdesk:api-auth-fail:address:{self.address}", spread)]
        if self.prefix:
            found.append((f"helpdesk:api-auth-fail:pair:{self.address}:{self.prefix}", pair))
            found.append((f"helpdesk:api-auth-fail:prefix:{self.prefix}", spread))
        return found


def caller(request: Request, plain: str) -> Caller:
    prefix = plain.removeprefix(KEY_PREFIX).partition("_")[0] if plain.startswith(KEY_PREFIX) else ""
    return Caller(address=client_ip(request), prefix=prefix if PREFIX_RE.fullmatch(prefix) else "")


def _window() -> float:
    return settings.API_AUTH_LOCKOUT_MINUTES * 60


def _recent(key: str, now: float) -> list[float]:
    """The failures of a bucket still inside the window, newest first (DRF's throttle history)."""
    return [at for at in cache.get(key, []) if at > now - _window()]


def locked_for(who: Caller) -> int | None:
    """Seconds until the caller may try again, or None when no bucket of theirs is full."""
    now = time.time()
    waits = []
    for key, limit in who.buckets():
        history = _recent(key, now)
        if len(history) >= limit:
            # The lock ends when the oldest of the last `limit` failures leaves the window.
            waits.append(history[limit - 1] + _window() - now)
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(who: Caller, request: Request) -> None:
    """Count the failure in each bucket, log it (never the key) and write its audit row."""
    now = time.time()
    full = []
    for key, limit in who.buckets():
        history = [now, *_recent(key, now)][:limit]
        cache.set(key, history, math.ceil(_window()))
        if len(history) >= limit:
            full.append(key.split(":")[2])
    path = request.path[:200]
    logger.warning(
        "API authentication failed: address %s, key prefix %s, %s %s%s",
        who.address, who.prefix or "(none)", request.method, path,
        f"; locked ({', '.join(full)}) for {settings.API_AUTH_LOCKOUT_MINUTES} min" if full else "",
    )
    ApiAuthFailure.objects.create(address=who.address, key_prefix=who.prefix, path=path)
