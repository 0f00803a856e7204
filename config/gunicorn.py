"""Gunicorn settings for a web machine: `gunicorn -c config/gunicorn.py config.wsgi`.

Every value can be changed from the environment (GUNICORN_*), see docs/deploy.md.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Sync workers, two per core plus one (gunicorn's rule of thumb): requests are short and
# database-bound; slow clients are the proxy's job (nginx or the load balancer buffers them).
workers = _int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)
threads = _int("GUNICORN_THREADS", 1)  # more than 1 switches to the gthread worker
# A request running longer than this is killed (its worker restarted); the API's JSON Lines
# imports are the slowest requests. The load balancer's idle timeout should be longer.
timeout = _int("GUNICORN_TIMEOUT", 60)
# Request line and headers only (gunicorn's defaults, spelt out): gunicorn has no body limit; the
# app refuses large bodies before reading them (helpdesk.body_limit), nginx before sending them.
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 4094)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # on SIGTERM, finish requests in flight
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Restart each worker after about this many requests, so slow memory growth cannot build up.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Load the app once in the master: a configuration error (no SECRET_KEY with DEBUG off)
# stops start-up at once with one clear message, and workers share the loaded code.
preload_app = True
# The app writes one access line per request itself (logger helpdesk.access) with the request
# id and user; gunicorn's own access log would be a second, less useful line.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The control socket (gunicornc) is not used; without it, several gunicorns share a machine.
control_socket_disable = True


def on_starting(server) -> None:
    """gunicorn's own lines (start, stop, worker timeouts) in the app's format (LOG_FORMAT)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        from helpdesk.observability import JsonFormatter

        for handler in server.log.error_log.handlers:
            handler.setFormatter(JsonFormatter())


def when_ready(server) -> None:
    """Load the search segmenter's dictionary (jieba, ~0.6 s of CPU) in the master, before the
    workers fork: they share it, instead of each worker's first knowledge-base search (and the
    first after every max_requests restart) loading it. bench/load.py measured those first
    searches at 5-10 s on a busy machine."""
    from knowledge.search import words

    words("预热 warm-up")
