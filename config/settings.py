"""Settings for the helpdesk, all read from the environment.

With no environment at all the project runs on SQLite and a Celery broker that needs no
server, so one can check out the code, run `make run`, and it works. DATABASE_URL and
CELERY_BROKER_URL switch to PostgreSQL and Redis or RabbitMQ.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from helpdesk import pii as pii_policy  # pure: the masking kinds and the default order-number pattern

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HELPDESK_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: str) -> bool:
    """Read a boolean; anything but the listed spellings is a configuration error."""
    value = os.environ.get(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "false")
# pytest (8.2 and later) sets PYTEST_VERSION: plain `pytest` then works on a fresh clone.
TESTING = "PYTEST_VERSION" in os.environ

# Without SECRET_KEY, management commands and tests run with a key marked insecure;
# `check --deploy` flags it (security.W009) and config/wsgi.py refuses to serve with it
# unless DEBUG is on.
INSECURE_KEY_PREFIX = "django-insecure-"
SECRET_KEY = os.environ.get("SECRET_KEY", "") or INSECURE_KEY_PREFIX + "local-development-only-" + "x" * 30

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
# Where customers reach this site: links in emails (the satisfaction survey) are built on it.
PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://localhost:{os.environ.get('HELPDESK_PORT', '8000')}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # full-text search types and lookups; harmless on SQLite
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "helpdesk",
    "tickets",
    "qa",
    "knowledge",
]

MIDDLEWARE = [
    # First, so its access line and request id cover every response (helpdesk.observability).
    "helpdesk.middleware.RequestContextMiddleware",
    # Before anything reads the body: an oversized one is a 413 at once (helpdesk.body_limit).
    "helpdesk.body_limit.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the default so a fresh checkout runs with no database server. WAL and a busy
# timeout let the web process and the Celery worker write at once; IMMEDIATE transactions
# take the write lock up front, because select_for_update() does nothing on SQLite.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'helpdesk.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection is checked before a request reuses it: after a database restart
        # the first request gets a new connection instead of an error.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": ""}  # in memory
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets psycopg prepare a statement the fifth time it runs on a
    # connection: the ORM's few hot statements skip parsing and planning. Switch off
    # (DATABASE_PREPARED_STATEMENTS=false) behind PgBouncer in transaction mode.
    if envbool("DATABASE_PREPARED_STATEMENTS", "true"):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "helpdesk.auth.AgentAwareBackend"]

# Login protection (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one username from
# one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# An attempt while locked is refused before the password is checked, and not recorded: the lock
# ends LOGIN_LOCKOUT_MINUTES after the last counted failure (retrying does not prolong it), and
# hammering a locked login writes nothing (axes appends each recorded attempt's form to its row).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The address the way the API's throttle reads it (REST_FRAMEWORK NUM_PROXIES): the last
# X-Forwarded-For hop behind BEHIND_TLS_PROXY, otherwise REMOTE_ADDR, so a caller cannot dodge
# the count by sending the header.
AXES_CLIENT_IP_CALLABLE = "helpdesk.login_protection.client_ip"
# A locked-out login gets 429 and a page saying for how long and whom to ask.
AXES_LOCKOUT_CALLABLE = "helpdesk.login_protection.lockout_response"
# Failures are logged (WARNING) with the address, and the username only when it names an
# account: a mistyped "username" may be a password. No version banner at every start.
AXES_CLIENT_STR_CALLABLE = "helpdesk.login_protection.client_str"
AXES_VERBOSE = False
# No AccessLog (a row per successful login, kept for ever: nothing purges it): User.last_login,
# which the access review reads, and the log line of each login are enough. Failures stay in
# AccessAttempt until their cool-off ends and in the logs; no AccessFailureLog either.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
# The access review (/admin/auth/user/access-review/) flags staff without a login and API keys
# without a use for this many days.
ACCESS_REVIEW_STALE_DAYS = envint("ACCESS_REVIEW_STALE_DAYS", 90)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# whitenoise serves static files from STATIC_ROOT, filled by `manage.py collectstatic` on each
# release: in production with hashed names, compressed and cached for a year. The manifest
# only exists after collectstatic, so DEBUG and the tests keep plain storage (and whitenoise
# then finds files in the apps themselves).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development and tests: whitenoise looks files up on each request (no collectstatic needed).
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

LOGIN_URL = "admin:login"

# Security: production settings pass `manage.py check --deploy`.
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false" if DEBUG or TESTING else "true")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Trust X-Forwarded-Proto only behind a proxy that always sets it (nginx, a load balancer).
if envbool("BEHIND_TLS_PROXY", "false"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Load balancers probe /healthz over plain HTTP on the private network: no redirect to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Content security policy (Django's ContentSecurityPolicyMiddleware): scripts only from this
# site's files, no inline script anywhere (the admin, the QA scoring page, the ticket page's
# assist panel, the live view and the survey page load theirs from /static/, the API docs from
# their own URL). A page that needs an inline script must use a nonce (CSP.NONCE).
# Inline styles stay allowed: several pages carry <style> blocks and style attributes, and a
# style cannot run code. data: images are the API docs' icons.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# A shared cache makes API throttling hold across processes; local memory is the default.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith("redis://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be redis://…, not {CACHE_URL!r}")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "helpdesk.api.auth.KeyScope",
        "helpdesk.api.auth.RolePermissions",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["helpdesk.api.auth.PerClientThrottle"],
    # Anonymous callers are throttled by address: trust X-Forwarded-For only from the one proxy
    # in front (BEHIND_TLS_PROXY), or a caller could name a new address on every request.
    "NUM_PROXIES": 1 if envbool("BEHIND_TLS_PROXY", "false") else 0,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON with a UTF-8 BOM is accepted; nesting deeper than 64 is a 400 (helpdesk.api.parsers).
    "DEFAULT_PARSER_CLASSES": ["helpdesk.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "helpdesk.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "helpdesk.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Request bodies above these sizes are refused with 413 before they are read
# (helpdesk.body_limit): imports post whole files, every other body is small. A bigger history
# goes through `manage.py import_tickets` or in parts.
REQUEST_MAX_BODY_BYTES = envint("API_MAX_BODY_MB", 10) * 1024 * 1024
IMPORT_MAX_BODY_BYTES = envint("IMPORT_MAX_BODY_MB", 100) * 1024 * 1024
REQUEST_BODY_LIMITS = {"/api/v1/imports/": IMPORT_MAX_BODY_BYTES}
# Django's own check (request.body, forms) at the largest of them; the middleware applies each.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(REQUEST_MAX_BODY_BYTES, *REQUEST_BODY_LIMITS.values())
# Uploaded import files wait here for the worker (ImportJob): shared storage when web and
# workers run on different machines.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "1200/min")
# Dates and instants the API takes (filters, bodies) lie in these years; others are a 400 naming
# the field (helpdesk.api.fields), and the schema's patterns say so.
API_MIN_YEAR = envint("API_MIN_YEAR", 2000)
API_MAX_YEAR = envint("API_MAX_YEAR", 2100)
if not 1901 <= API_MIN_YEAR <= API_MAX_YEAR <= 9998:
    raise ImproperlyConfigured("API_MIN_YEAR..API_MAX_YEAR must lie in 1901..9998 (before 1901 zones keep local mean time).")
# Failed API key authentication (helpdesk.api.auth_failures), as axes does for the admin's login:
# API_AUTH_FAILURE_LIMIT failures from one address naming one key prefix lock that pair, and
# API_AUTH_FAILURE_SPREAD_LIMIT lock the address (any key) or the prefix (any address), each for
# API_AUTH_LOCKOUT_MINUTES after its oldest counted failure: 429 with Retry-After.
API_AUTH_FAILURE_LIMIT = envint("API_AUTH_FAILURE_LIMIT", 10)
API_AUTH_FAILURE_SPREAD_LIMIT = envint("API_AUTH_FAILURE_SPREAD_LIMIT", 30)
API_AUTH_LOCKOUT_MINUTES = envint("API_AUTH_LOCKOUT_MINUTES", 15)
if min(API_AUTH_FAILURE_LIMIT, API_AUTH_FAILURE_SPREAD_LIMIT, API_AUTH_LOCKOUT_MINUTES) < 1:
    raise ImproperlyConfigured("API_AUTH_FAILURE_LIMIT, API_AUTH_FAILURE_SPREAD_LIMIT and API_AUTH_LOCKOUT_MINUTES must be at least 1.")
# Anonymous helpful/not-helpful votes on knowledge-base articles, per IP address.
KB_FEEDBACK_THROTTLE_RATE = os.environ.get("KB_FEEDBACK_THROTTLE_RATE", "30/hour")
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "DESCRIPTION": "Tickets, conversations, customers, imports and webhooks. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and its docs describe the API; they hold no data, so they need no key.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 10)

# Logs go to stderr, one line per record: JSON objects in production (LOG_FORMAT=json, the
# default without DEBUG), readable text in development. Every record carries the request id
# and the user or API key of the request, or the id of the Celery task, that logged it
# (helpdesk.observability); each request writes one access line (logger helpdesk.access).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "helpdesk.observability.ContextFilter"},
        "secret_paths": {"()": "helpdesk.observability.SecretPathFilter"},
    },
    "formatters": {
        "json": {"()": "helpdesk.observability.JsonFormatter"},
        "plain": {"()": "helpdesk.observability.PlainFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context", "secret_paths"], "formatter": LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's records reach the root handler once, in the same format (not also Django's
        # own console handler, which would print them a second time in DEBUG).
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # These name the request's full path, the survey link's token included: cut on the
        # logger too, for any handler attached there (error mails).
        "django.request": {"handlers": [], "filters": ["secret_paths"], "propagate": True},
        "django.security.csrf": {"handlers": [], "filters": ["secret_paths"], "propagate": True},
        # runserver's request lines carry query strings, and helpdesk.access already writes a
        # line per request.
        "django.server": {"handlers": [], "level": "CRITICAL", "propagate": True},
    },
}

# History is read-only in the admin: reverting would change state around the services.
SIMPLE_HISTORY_REVERT_DISABLED = True

# Celery. The default broker is kombu's filesystem transport under var/, which needs no
# server; CELERY_BROKER_URL=redis://… or amqp://… switches to a real one.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat sends each entry once per period even when two beats run (helpdesk/beat.py).
CELERY_BEAT_SCHEDULER = "helpdesk.beat:OncePerPeriodScheduler"
# Task guard (helpdesk.task_guard): a task acknowledged late (tasks.IDEMPOTENT) whose worker dies
# is delivered again; after TASK_MAX_DELIVERIES deliveries it is not run again but flagged for an
# administrator (docs/deploy.md, "A worker dies").
CELERY_TASK_REJECT_ON_WORKER_LOST = True
TASK_MAX_DELIVERIES = envint("TASK_MAX_DELIVERIES", 3)
if TASK_MAX_DELIVERIES < 1:
    raise ImproperlyConfigured("TASK_MAX_DELIVERIES must be at least 1: a task runs at least once.")
# Redis hands an unacknowledged task to another worker after this many seconds (Redis's and
# SQS's visibility timeout; RabbitMQ redelivers as soon as the worker's connection drops). It must
# stay above the longest countdown (webhook retries wait up to an hour): a message held for its
# countdown longer than this is handed out twice.
CELERY_VISIBILITY_TIMEOUT_SECONDS = envint("CELERY_VISIBILITY_TIMEOUT_SECONDS", 7200)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A Redis host that takes connections but never answers would hold each request that queues a
    # task for minutes; with these it fails in seconds, and the sweeps catch up afterwards.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
    }
elif CELERY_BROKER_URL.startswith("sqs://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")
# The deadline runner: beat sends the SLA sweep this often, and it hands every stage due by then
# to workers at once, in batches. 1 s keeps a 15-second chat's escalation within about a second
# of its deadline (bench/sla_sweep.py); one indexed query per second costs the database little.
SLA_SWEEP_SECONDS = envint("HELPDESK_SLA_SWEEP_SECONDS", 1)
if SLA_SWEEP_SECONDS < 1:
    raise ImproperlyConfigured("HELPDESK_SLA_SWEEP_SECONDS must be at least 1.")
# 0 (the default): no ETA tasks, the runner alone. More: each sweep also hands out the stages due
# within this many seconds as ETA tasks at their exact time, and a request changing a clock due
# that soon queues its own (the design before the runner; kept to compare, bench/README.md). Then
# at least the sweep period, so nothing falls between sweeps.
SLA_PRECISE_HORIZON_SECONDS = envint("SLA_PRECISE_HORIZON_SECONDS", 0)
if 0 < SLA_PRECISE_HORIZON_SECONDS < SLA_SWEEP_SECONDS:
    raise ImproperlyConfigured("SLA_PRECISE_HORIZON_SECONDS must be 0 or at least HELPDESK_SLA_SWEEP_SECONDS.")
# A clock handed to a worker is claimed for this long past its stage's time; while its check runs
# the worker holds the clock's row lock, which the sweep skips. A check lost with its worker (kill -9,
# OOM, a machine gone) is handed out again by the first sweep after the claim ends: redone within
# lease + sweep period whatever the broker does (docs/deploy.md, "A worker dies"). Shorter than
# the worst queue wait means checks handed out twice (harmless, but more work at peak).
SLA_CLAIM_LEASE_SECONDS = envint("SLA_CLAIM_LEASE_SECONDS", 3)
if SLA_CLAIM_LEASE_SECONDS < 1:
    raise ImproperlyConfigured("SLA_CLAIM_LEASE_SECONDS must be at least 1.")
# A QA dispute open longer than this many business days (on this calendar) is flagged.
QA_DISPUTE_BUSINESS_DAYS = envint("QA_DISPUTE_BUSINESS_DAYS", 3)
QA_DISPUTE_CALENDAR = os.environ.get("QA_DISPUTE_CALENDAR", "cn-workweek")
# No warning when it would come less than this before the deadline: a 15-second chat target
# warned 3 seconds ahead gives nobody time to act, and doubles the tasks at peak.
SLA_MIN_WARNING_LEAD_SECONDS = envint("SLA_MIN_WARNING_LEAD_SECONDS", 60)

# Notifications go by email too: printed to the console in development, SMTP in production.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "helpdesk@localhost")


def beat_crontab(name: str, default: str) -> crontab | None:
    """A cron expression from HELPDESK_BEAT_<NAME>, or the default; "disable" turns it off."""
    expression = os.environ.get(f"HELPDESK_BEAT_{name.upper()}", default).strip()
    if expression == "disable":
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(minute, hour, day_of_week, day_of_month, month_of_year)


_beat = {
    # Close tickets that stayed solved for TICKETS_AUTO_CLOSE_DAYS. Every 10 minutes:
    # https://crontab.guru/#*/10_*_*_*_*
    "close-solved-tickets": (
        "tickets.close_solved_tickets",
        beat_crontab("close_solved_tickets", "*/10 * * * *"),
        9 * 60,
    ),
    # The deadline runner: hand SLA clocks with a stage due (warning, breach, next escalation
    # level) to workers. Every HELPDESK_SLA_SWEEP_SECONDS (default 1 s), expiring after as long.
    "sweep-sla-clocks": (
        "tickets.sweep_sla_clocks",
        None if os.environ.get("HELPDESK_BEAT_SWEEP_SLA_CLOCKS") == "disable"
        else timedelta(seconds=SLA_SWEEP_SECONDS),
        max(SLA_SWEEP_SECONDS, 5),  # a sweep behind a short backlog still runs; later ones find nothing
    ),
    # Give waiting tickets to agents with a free seat; routing does it at once when an agent
    # comes online or frees a seat, this catches the rest (a capacity raised in the admin).
    "assign-waiting-tickets": ("tickets.assign_waiting_tickets", timedelta(seconds=30), 30),
    # Draw yesterday's QA sample for every scope. Daily at 01:00 local time:
    # https://crontab.guru/#0_1_*_*_*
    "draw-qa-samples": ("qa.draw_daily_samples", beat_crontab("draw_qa_samples", "0 1 * * *"), 3600),
    # Queue again webhook deliveries whose task was lost. Every 5 minutes:
    # https://crontab.guru/#*/5_*_*_*_*
    "requeue-webhook-deliveries": (
        "helpdesk.requeue_webhook_deliveries",
        beat_crontab("requeue_webhook_deliveries", "*/5 * * * *"),
        4 * 60,
    ),
    # Forget Idempotency-Key results after 24 hours. Daily at 04:17:
    # https://crontab.guru/#17_4_*_*_*
    "purge-idempotency-keys": (
        "helpdesk.purge_idempotency_keys",
        beat_crontab("purge_idempotency_keys", "17 4 * * *"),
        3600,
    ),
    # Forget the task guard's rows of tasks that died and never came back (a day old, unflagged).
    # Daily at 04:27: https://crontab.guru/#27_4_*_*_*
    "forget-stale-task-deliveries": (
        "helpdesk.forget_stale_task_deliveries",
        beat_crontab("forget_stale_task_deliveries", "27 4 * * *"),
        3600,
    ),
    # Email the weekly and monthly operations reports that are due (each period once; a day
    # missed is caught up the next). Daily at 07:00 local time: https://crontab.guru/#0_7_*_*_*
    "send-report-emails": (
        "tickets.send_report_emails",
        beat_crontab("send_report_emails", "0 7 * * *"),
        23 * 3600,
    ),
    # Back up the database, keeping BACKUP_KEEP copies. Daily at 03:30 local time:
    # https://crontab.guru/#30_3_*_*_*
    "backup-database": ("helpdesk.backup_database", beat_crontab("backup_database", "30 3 * * *"), 6 * 3600),
    # Anonymise conversations past their retention period. Daily at 02:45 local time:
    # https://crontab.guru/#45_2_*_*_*
    "anonymise-expired-conversations": (
        "tickets.anonymise_expired_conversations",
        beat_crontab("anonymise_expired_conversations", "45 2 * * *"),
        6 * 3600,
    ),
    # Beat's heartbeat: a worker records the time, and GET /healthz reports its age. Every
    # minute: https://crontab.guru/#*_*_*_*_*
    "beat-heartbeat": ("helpdesk.beat_heartbeat", beat_crontab("heartbeat", "* * * * *"), 50),
    # Tell administrators to review who holds which role and which keys lie unused (each once a
    # month). The 1st of the month at 09:30 local time: https://crontab.guru/#30_9_1_*_*
    "remind-access-review": (
        "helpdesk.remind_access_review",
        beat_crontab("remind_access_review", "30 9 1 * *"),
        23 * 3600,
    ),
    # Remind article owners of reviews that are due (each article at most weekly). Daily at
    # 09:00 local time: https://crontab.guru/#0_9_*_*_*
    "remind-article-reviews": (
        "knowledge.remind_overdue_reviews",
        beat_crontab("remind_article_reviews", "0 9 * * *"),
        23 * 3600,
    ),
}
CELERY_BEAT_SCHEDULE = {
    key: {"task": task, "schedule": schedule, "options": {"expires": expires}}
    for key, (task, schedule, expires) in _beat.items()
    if schedule is not None
}
# GET /healthz answers 503 when beat's heartbeat is older than this (or missing), and gives the
# broker this long to accept a connection.
HEALTH_BEAT_MAX_AGE_SECONDS = envint("HEALTH_BEAT_MAX_AGE_SECONDS", 180)
if HEALTH_BEAT_MAX_AGE_SECONDS <= 60:
    raise ImproperlyConfigured("HEALTH_BEAT_MAX_AGE_SECONDS must be more than 60: the heartbeat comes every minute.")
HEALTH_BROKER_TIMEOUT_SECONDS = envint("HEALTH_BROKER_TIMEOUT_SECONDS", 2)

# Domain settings.
TICKETS_AUTO_CLOSE_DAYS = envint("TICKETS_AUTO_CLOSE_DAYS", 4)
CSAT_SURVEY_DAYS = envint("CSAT_SURVEY_DAYS", 7)  # how long a satisfaction survey link stays valid
# Backups (manage.py backup / restore, and the daily task): where, and how many to keep.
BACKUP_DIR = Path(os.environ.get("BACKUP_DIR", str(VAR_DIR / "backups")))
BACKUP_KEEP = envint("BACKUP_KEEP", 7)
# Retention: a closed ticket's conversation is anonymised (customer details removed, metrics
# kept) this many days after it closed; 0 keeps conversations for ever.
RETENTION_CONVERSATION_DAYS = envint("RETENTION_CONVERSATION_DAYS", 3 * 365)
# What roles without the right to customer details (inspectors, trainers) read masked in
# conversations, subjects, comments and search (helpdesk.pii, the one masking policy): any of
# phone, email, id_number, bank_card, address, order_number; and how an order number looks (a
# regular expression; its group "number", if any, is the part masked).
PII_MASKED_KINDS = envlist("PII_MASKED_KINDS", ",".join(pii_policy.KINDS))
if unknown_kinds := set(PII_MASKED_KINDS) - set(pii_policy.KINDS):
    raise ImproperlyConfigured(f"PII_MASKED_KINDS: unknown {sorted(unknown_kinds)}; known: {', '.join(pii_policy.KINDS)}")
PII_ORDER_NUMBER_PATTERN = os.environ.get("PII_ORDER_NUMBER_PATTERN", "") or pii_policy.DEFAULT_ORDER_NUMBER_PATTERN
try:
    re.compile(PII_ORDER_NUMBER_PATTERN)
except re.error as error:
    raise ImproperlyConfigured(f"PII_ORDER_NUMBER_PATTERN is not a regular expression: {error}") from None
KB_REVIEW_DAYS = envint("KB_REVIEW_DAYS", 90)  # an article's review falls due this long after publishing

# Error mails (to ADMINS) carry field names but not their values, nor the query string: the
# values are often a customer's phone number or email.
DEFAULT_EXCEPTION_REPORTER = "helpdesk.error_reports.PiiSafeExceptionReporter"
