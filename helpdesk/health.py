"""Is this machine fit to serve? The checks behind GET /healthz, and beat's heartbeat.

Each check is cheap (one SELECT, one broker connection with a short timeout, one row read)
and reports only a status, a number and an error class: the endpoint is public, so nothing
in it may name a host, a user or a customer. Details go to the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Heartbeat

logger = logging.getLogger(__name__)

BEAT = "beat"  # the heartbeat row beat's task writes


def beat_max_age_seconds() -> int:
    """A heartbeat older than this means beat (or every worker) has stopped."""
    return int(getattr(settings, "HEALTH_BEAT_MAX_AGE_SECONDS", 180))


def broker_timeout_seconds() -> float:
    """The broker check gives up after this long, so a dead broker answers 503 quickly
    instead of holding a web worker until the load balancer itself gives up."""
    return float(getattr(settings, "HEALTH_BROKER_TIMEOUT_SECONDS", 2))


@dataclass
class Check:
    ok: bool
    error: str = ""  # an exception's class name, never its message (it may name hosts)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": "ok" if self.ok else "fail", **self.extra}
        if self.error:
            data["error"] = self.error
        return data


def record_heartbeat(*, name: str = BEAT, at: datetime | None = None) -> datetime:
    """Store that `name` was alive at `at` (now); idempotent, one row per name."""
    at = at or timezone.now()
    Heartbeat.objects.update_or_create(name=name, defaults={"at": at})
    return at


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not fit to serve"; the log has the details
        logger.warning("health: database check failed: %s: %s", type(exc).__name__, exc)
        return Check(ok=False, error=type(exc).__name__)
    return Check(ok=True)


def check_broker() -> Check:
    """Open (and close) one connection to the broker, retrying once within the timeout."""
    from config.celery import app

    timeout = broker_timeout_seconds()
    try:
        with app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:
        logger.warning("health: broker check failed: %s: %s", type(exc).__name__, exc)
        return Check(ok=False, error=type(exc).__name__)
    return Check(ok=True)


def check_beat(*, database_ok: bool = True) -> Check:
    """The age of beat's last heartbeat, against HEALTH_BEAT_MAX_AGE_SECONDS."""
    max_age = beat_max_age_seconds()
    if not database_ok:
        return Check(ok=False, error="DatabaseUnavailable", extra={"age_seconds": None, "max_age_seconds": max_age})
    try:
        at = Heartbeat.objects.filter(name=BEAT).values_list("at", flat=True).first()
    except Exception as exc:
        logger.warning("health: heartbeat read failed: %s: %s", type(exc).__name__, exc)
        return Check(ok=False, error=type(exc).__name__, extra={"age_seconds": None, "max_age_seconds": max_age})
    if at is None:
        return Check(ok=False, error="NoHeartbeat", extra={"age_seconds": None, "max_age_seconds": max_age})
    age = max(0, round((timezone.now() - at).total_seconds()))
    return Check(ok=age <= max_age, extra={"age_seconds": age, "max_age_seconds": max_age})


CHECKS = ("database", "broker", "beat")


def report(only: tuple[str, ...] = CHECKS) -> tuple[bool, dict[str, Any]]:
    """The named checks (all by default); (healthy, the JSON body)."""
    results: dict[str, Check] = {}
    database = check_database() if "database" in only or "beat" in only else None
    if "database" in only and database is not None:
        results["database"] = database
    if "broker" in only:
        results["broker"] = check_broker()
    if "beat" in only:
        results["beat"] = check_beat(database_ok=database is not None and database.ok)
    healthy = all(check.ok for check in results.values())
    return healthy, {
        "status": "ok" if healthy else "fail",
        "checks": {name: check.as_dict() for name, check in results.items()},
    }
