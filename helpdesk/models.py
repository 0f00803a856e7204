"""The organisation: who answers (teams, agents, skills) and whom they answer (customers)."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .calendars import format_spans, parse_spans
from .history import AuditedRecords


class Channel(models.TextChoices):
    """Where a conversation comes from. The values are stable codes used by the API."""

    WEB_CHAT = "web_chat", _("Web chat")
    APP_CHAT = "app_chat", _("In-app chat")
    WECHAT = "wechat", _("WeChat")
    WEIBO = "weibo", _("Weibo")
    DOUYIN = "douyin", _("Douyin")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    OTHER = "other", _("Other")


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="managed_teams",
        verbose_name=_("department manager"), help_text=_("Notified at the second level of an SLA escalation."),
    )
    handover_target_seconds = models.PositiveIntegerField(
        _("response target for escalated tickets (seconds)"), default=4 * 3600,
        help_text=_("How soon this team must hand back a ticket escalated to it."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("skill")
        verbose_name_plural = _("skills")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Agent(models.Model):
    """A staff user who answers conversations."""

    class Presence(models.TextChoices):
        ONLINE = "online", _("Online")
        AWAY = "away", _("Away")
        BUSY = "busy", _("Busy")
        OFFLINE = "offline", _("Offline")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent", verbose_name=_("user")
    )
    display_name = models.CharField(_("display name"), max_length=100)
    teams = models.ManyToManyField(Team, related_name="agents", blank=True, verbose_name=_("teams"))
    skills = models.ManyToManyField(Skill, related_name="agents", blank=True, verbose_name=_("skills"))
    max_concurrent = models.PositiveSmallIntegerField(
        _("max concurrent conversations"), default=5
    )
    presence = models.CharField(
        _("presence"), max_length=10, choices=Presence.choices, default=Presence.OFFLINE
    )
    presence_changed_at = models.DateTimeField(_("presence changed at"), default=timezone.now)
    last_assigned_at = models.DateTimeField(
        _("last assigned at"), null=True, blank=True, editable=False,
        help_text=_("Routing gives the next conversation to the agent idle longest among the least loaded."),
    )

    history = AuditedRecords(excluded_fields=["presence_changed_at", "last_assigned_at"])

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["display_name"]
        indexes = [models.Index(fields=["presence"], name="agent_presence_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_concurrent__gte=1), name="agent_max_concurrent_positive"
            )
        ]

    def __str__(self) -> str:
        return self.display_name


class Customer(models.Model):
    class Tier(models.TextChoices):
        STANDARD = "standard", _("Standard")
        VIP = "vip", _("VIP")
        ENTERPRISE = "enterprise", _("Enterprise")

    external_id = models.CharField(
        _("external id"), max_length=200, blank=True, help_text=_("The customer's id in the shop or CRM.")
    )
    name = models.CharField(_("name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    email = models.EmailField(_("email"), blank=True, db_index=True)
    tier = models.CharField(_("tier"), max_length=20, choices=Tier.choices, default=Tier.STANDARD)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE,
        help_text=_("Automatic replies and the satisfaction survey use it."),
    )
    tags = models.ManyToManyField("Tag", related_name="customers", blank=True, verbose_name=_("tags"))
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        indexes = [models.Index(fields=["name"], name="customer_name_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~models.Q(external_id=""), name="customer_external_id_unique"
            )
        ]
        permissions = [("view_customer_pii", _("Can see customers' phone numbers and email"))]

    def __str__(self) -> str:
        return self.name


class CustomerIdentity(models.Model):
    """The id a channel knows a customer by (a WeChat openid, a shop user id, …)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    external_id = models.CharField(_("external id"), max_length=200)

    class Meta:
        verbose_name = _("customer identity")
        verbose_name_plural = _("customer identities")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="customer_identity_unique_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.external_id}"


class Tag(models.Model):
    """A free label shared by tickets and customers."""

    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A key another system (or a staff member) uses for the API; only its hash is stored."""

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        WRITE = "write", _("Read and write")

    name = models.CharField(_("name"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("acts as user")
    )
    prefix = models.CharField(_("prefix"), max_length=12, unique=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    history = AuditedRecords(excluded_fields=["last_used_at"])

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotentRequest(models.Model):
    """The first response to a POST sent with an Idempotency-Key, replayed on retries."""

    RETENTION = timedelta(hours=24)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_unique_per_user")
        ]


class ApiAuthFailure(models.Model):
    """A request that named an API key the API did not accept (helpdesk.api.auth_failures).

    Recorded so the audit trail shows it (its history row, as for every audited model); at most
    API_AUTH_FAILURE_LIMIT a window per address and key, since a locked caller is refused before
    anything is recorded. Never the key's secret: only the prefix it named, if well formed.
    """

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True, editable=False)
    address = models.GenericIPAddressField(_("client address"), null=True, blank=True, editable=False)
    key_prefix = models.CharField(_("key prefix"), max_length=12, blank=True, editable=False)
    path = models.CharField(_("path"), max_length=200, editable=False)

    history = AuditedRecords()

    class Meta:
        verbose_name = _("failed API authentication")
        verbose_name_plural = _("failed API authentications")

    def __str__(self) -> str:
        key = f"hd_{self.key_prefix}…" if self.key_prefix else "?"
        return f"{self.address or '?'} {key} {self.path}"


class WebhookEndpoint(models.Model):
    """An address that receives signed event notifications."""

    class Event(models.TextChoices):
        TICKET_CREATED = "ticket.created", "ticket.created"
        TICKET_UPDATED = "ticket.updated", "ticket.updated"
        TICKET_STATUS_CHANGED = "ticket.status_changed", "ticket.status_changed"
        MESSAGE_CREATED = "message.created", "message.created"
        SLA_BREACHED = "sla.breached", "sla.breached"
        ESCALATION_CREATED = "escalation.created", "escalation.created"
        QA_REVIEW_COMPLETED = "qa.review.completed", "qa.review.completed"
        CSAT_RECEIVED = "csat.received", "csat.received"

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(
        _("secret"), max_length=200, help_text=_("Shared with the receiver to verify the HMAC-SHA256 signature.")
    )
    events = models.JSONField(_("events"), default=list, help_text=_("Event names to send; empty sends none."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    history = AuditedRecords(excluded_fields=["secret"])

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one endpoint, with its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.CharField(_("event"), max_length=50)
    payload = models.JSONField(_("payload"), encoder=DjangoJSONEncoder)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    # The latest time the next attempt's task should come; a pending delivery left well past it
    # lost its task (broker down at commit, or a retry that could not be queued) and is re-queued.
    next_attempt_at = models.DateTimeField(_("next attempt due"), default=timezone.now, editable=False)
    # Set while a worker sends it, so two tasks for one delivery never POST it at the same time.
    sending_until = models.DateTimeField(_("being sent until"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_created_idx"),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_pending_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


def validate_time_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        message = _("“%(zone)s” is not a time zone (use a name like Asia/Shanghai).")
        raise ValidationError(message, params={"zone": value}) from None


def validate_spans(value: str) -> None:
    try:
        parse_spans(value)
    except ValueError as error:
        raise ValidationError(_("Hours must read like 09:00-12:00, 13:00-18:00 (%(error)s).") % {"error": error}) from None


class BusinessCalendar(models.Model):
    """When a team works: weekly hours in the calendar's own time zone, holidays and make-up days."""

    class HolidayRegion(models.TextChoices):
        CN = "CN", _("Mainland China (statutory holidays and make-up workdays)")

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    holiday_region = models.CharField(
        _("public holidays"), max_length=8, choices=HolidayRegion.choices, blank=True,
        help_text=_("Holidays and make-up workdays filled in for the years the chinesecalendar package knows."),
    )
    workday_hours = models.CharField(
        _("hours of an extra workday"), max_length=100, default="09:00-18:00", validators=[validate_spans],
        help_text=_("Used on a make-up or extra working day that gives no hours of its own."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = AuditedRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkingHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours", verbose_name=_("calendar"))
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["calendar", "weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")) | models.Q(end=time(0)), name="working_hours_end_after_start"
            ),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="working_hours_weekday_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {format_spans(((self.start, self.end),))}"


class CalendarDate(models.Model):
    """A date that does not follow the week: a holiday, a make-up workday, other hours."""

    class Kind(models.TextChoices):
        CLOSED = "closed", _("Closed (holiday)")
        WORKING = "working", _("Working day")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Entered by hand")
        STATUTORY = "statutory", _("Statutory (chinesecalendar)")

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="dates", verbose_name=_("calendar"))
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    hours = models.CharField(
        _("hours"), max_length=100, blank=True, validators=[validate_spans],
        help_text=_("For a working day: its hours, like 10:00-16:00; blank for the calendar's workday hours."),
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL, editable=False)

    class Meta:
        verbose_name = _("calendar date")
        verbose_name_plural = _("calendar dates")
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="calendar_date_unique")]

    def __str__(self) -> str:
        return f"{self.date} {self.name or self.get_kind_display()}"

    def clean(self) -> None:
        if self.kind == self.Kind.CLOSED and self.hours:
            raise ValidationError({"hours": _("A closed day has no hours.")})


class Notification(models.Model):
    """Something a staff member must know, shown in their admin list and sent by email."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient")
    )
    kind = models.CharField(_("kind"), max_length=40)
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("ticket")
    )
    text = models.CharField(_("text"), max_length=500)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "-created_at"], name="notification_recipient_idx")]

    def __str__(self) -> str:
        return self.text


class Heartbeat(models.Model):
    """When a periodic process last proved it was alive: one row per process name.

    Beat writes "beat" every minute through a task, so the row's age shows, from any web
    machine, that both beat and a worker are running (GET /healthz). Rows "beat:<entry>" hold
    the period each beat entry was last sent in (helpdesk.beat: one send per period).
    """

    name = models.CharField(_("name"), max_length=50, unique=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} {self.at.isoformat()}"


class TaskDelivery(models.Model):
    """A late-acknowledged task while it runs, and how often it was delivered (helpdesk.task_guard).

    The row is written when a delivery starts and deleted when the task ends, so one that stays
    belongs to a task whose worker died under it. Past TASK_MAX_DELIVERIES the task is not run
    again but flagged, and the row stays for an administrator to resolve or run again.
    """

    task_id = models.CharField(_("task id"), max_length=255, unique=True)
    name = models.CharField(_("task"), max_length=255)
    # Our tasks take ids and small options; longer arguments are kept truncated and cannot run again.
    arguments = models.JSONField(_("arguments"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    queue = models.CharField(_("queue"), max_length=255, blank=True)
    deliveries = models.PositiveIntegerField(_("deliveries"), default=1)
    worker = models.CharField(_("last worker"), max_length=255, blank=True)
    first_started_at = models.DateTimeField(_("first started"), default=timezone.now)
    last_started_at = models.DateTimeField(_("last started"), default=timezone.now)
    flagged_at = models.DateTimeField(_("flagged"), null=True, blank=True, db_index=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("resolved by"),
    )

    class Meta:
        verbose_name = _("flagged task")
        verbose_name_plural = _("flagged tasks")
        ordering = ["-flagged_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name}[{self.task_id}]"
