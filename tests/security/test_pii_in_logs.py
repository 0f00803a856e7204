"""Customer PII (phone numbers, emails, ID and bank card numbers, names) never reaches the logs,
the Celery messages or the error mails, whatever the customer typed and wherever it failed.

Realistic flows run with everything captured (tests/security/pii_capture.py), then the capture
is scanned for each value as typed and in its usual disguises (spaced, dashed, URL-encoded,
JSON-escaped).
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone
from django.utils.log import AdminEmailHandler

import tickets.tasks  # noqa: F401  registers the tasks run below by name
from config.celery import app
from helpdesk.error_reports import PiiSafeExceptionReporter
from helpdesk.models import WebhookDelivery, WebhookEndpoint
from helpdesk.tasks import deliver_webhook_task
from helpdesk.webhooks import forget_endpoints
from tickets.models import Ticket

from .pii_capture import Capture, findings

pytestmark = pytest.mark.django_db

PHONE, PHONE_TYPED = "13912345678", "139 1234 5678"
EMAIL = "wang.xiaoming@example.cn"
ID_NUMBER = "11010519491231002X"
CARD, CARD_TYPED = "6222021234567890123", "6222 0212 3456 7890 123"
NAME = "王小明"
PII = {"phone": PHONE, "email": EMAIL, "id number": ID_NUMBER, "bank card": CARD, "name": NAME}
ADMINS = ["ops@example.com"]


@pytest.fixture
def capture(monkeypatch):
    captured = Capture().start(monkeypatch)
    yield captured
    captured.stop()


@pytest.fixture
def webhooks(db):
    """An integrator subscribed to everything, so every write queues a delivery with PII."""
    endpoint = WebhookEndpoint.objects.create(
        name="crm", url="https://crm.example.com/hook", secret="s3cret",
        events=["ticket.created", "ticket.updated", "ticket.status_changed", "message.created", "csat.received"],
    )
    forget_endpoints()
    yield endpoint
    forget_endpoints()


def _ticket_body(external_id: str) -> dict:
    return {
        "subject": f"手机 {PHONE} 登录不了", "channel": "web_chat", "external_id": external_id,
        "customer": {"name": NAME, "phone": PHONE, "email": EMAIL, "external_id": f"c-{external_id}"},
        "message": {"body": f"我的身份证 {ID_NUMBER}，银行卡 {CARD_TYPED}，电话 {PHONE_TYPED}，邮箱 {EMAIL}"},
    }


def test_api_flows_and_their_tasks_log_no_customer_data(api, client, alice, ada, support_team, webhooks, capture,
                                                        django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/tickets/", _ticket_body("shop-1"), format="json")
    assert created.status_code == 201, created.content
    reference = created.json()["reference"]
    ticket = Ticket.objects.get(pk=Ticket.pk_from_reference(reference))
    Ticket.objects.filter(pk=ticket.pk).update(team=support_team)

    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/tickets/{reference}/messages/", {
            "author": "customer", "body": f"卡号 {CARD} 扣款两次，身份证 {ID_NUMBER.lower()}"}, format="json").status_code == 201
        assert client.post(f"/api/v1/tickets/{reference}/messages/", {
            "author": "agent", "body": f"已联系 {PHONE_TYPED}，邮件发到 {EMAIL}", "status": "pending"},
            content_type="application/json").status_code == 201
        ingested = api.post("/api/v1/messages/ingest", {
            "channel": "wechat", "conversation_id": "wx-1",
            "customer": {"external_id": "wx-openid-1", "name": NAME, "phone": PHONE},
            "message": {"body": f"银行卡 {CARD} 身份证 {ID_NUMBER}", "external_id": "wx-m-1"}}, format="json")
        assert ingested.status_code == 201, ingested.content
        rated = api.post("/api/v1/csat/", {"ticket": reference, "stars": 1, "comment": f"打 {PHONE} 没人接"}, format="json")
        assert rated.status_code == 201, rated.content

    # Validation errors that echo what was sent, and look-ups by the customer's details.
    bad = _ticket_body("shop-2") | {"channel": PHONE}
    bad["customer"] = bad["customer"] | {"email": f"{PHONE}@@{EMAIL}", "phone": CARD * 2}
    assert api.post("/api/v1/tickets/", bad, format="json").status_code == 400
    assert api.patch(f"/api/v1/tickets/{reference}/", {"priority": ID_NUMBER}, format="json").status_code == 400
    assert api.get("/api/v1/customers/", {"phone": PHONE}).status_code == 200
    assert api.get("/api/v1/customers/", {"email": EMAIL}).status_code == 200
    assert api.get("/api/v1/tickets/", {"q": PHONE}).status_code == 200
    assert api.get(f"/api/v1/kb/search?q={NAME}+{PHONE}").status_code == 200
    assert api.get(f"/api/v1/customers/?phone={PHONE}&page_size=x{CARD}").status_code in (200, 400, 404)

    # Staff searching by the customer's details, in the admin.
    browser = Client()
    browser.force_login(ada)
    assert browser.get("/admin/tickets/ticket/", {"q": PHONE}).status_code == 200
    assert browser.get("/admin/helpdesk/customer/", {"q": EMAIL}).status_code == 200

    # Beat's tasks, run here as a worker would, over these tickets; retention anonymises one.
    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.CLOSED, closed_at=timezone.now() - timedelta(days=settings.RETENTION_CONVERSATION_DAYS + 1)
    )
    for name in ("tickets.sweep_sla_clocks", "tickets.close_solved_tickets", "tickets.anonymise_expired_conversations"):
        result = app.tasks[name].apply()
        assert result.successful(), result.traceback

    assert capture.tasks, "the flows should have queued webhook deliveries"
    assert any("helpdesk.access" in line for line in capture.logs), "the access log should have been captured"
    leaks = findings(capture.everything(), PII)
    assert not leaks, "Customer data escaped:\n" + "\n".join(leaks)


def test_a_failing_webhook_logs_no_customer_data_even_when_the_endpoint_echoes_it(api, webhooks, capture,
                                                                                  django_capture_on_commit_callbacks):
    """Endpoints often answer an error with the body they got; a retried delivery must not
    copy that into the logs, the retry's exception or the task's messages."""
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/tickets/", _ticket_body("shop-3"), format="json").status_code == 201
    delivery = WebhookDelivery.objects.filter(event="ticket.created").get()

    def echo(url, data, headers, timeout):
        return mock.Mock(status_code=422, text=f"invalid payload: {data.decode()}")

    with mock.patch("helpdesk.webhooks.requests.post", side_effect=echo):
        deliver_webhook_task.apply(args=(delivery.pk,))  # eager: every retry runs here, then it gives up
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts > 1
    leaks = findings(capture.everything(), PII)
    assert not leaks, "Customer data escaped:\n" + "\n".join(leaks)


@pytest.fixture
def error_mails(settings):
    """Error mails as a deployment turns them on: ADMINS and Django's AdminEmailHandler on
    django.request (the handler Django's own default logging uses), with settings' reporter."""
    settings.ADMINS = ADMINS
    handler = AdminEmailHandler()
    handler.setLevel(logging.ERROR)  # as Django's own mail_admins
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)


def test_a_crash_sends_an_error_mail_without_customer_data(api, ada, monkeypatch, capture, error_mails, mailoutbox):
    def crash(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("tickets.intake.create_ticket", crash)
    monkeypatch.setattr("helpdesk.api.views.CustomerViewSet.filter_queryset", crash)
    monkeypatch.setattr("helpdesk.admin.CustomerAdmin.save_model", crash)
    api.raise_request_exception = False
    assert api.post("/api/v1/tickets/", _ticket_body("shop-4"), format="json").status_code == 500
    assert api.get("/api/v1/customers/", {"phone": PHONE, "email": EMAIL}).status_code == 500
    browser = Client(raise_request_exception=False)
    browser.force_login(ada)
    form = {"name": NAME, "phone": PHONE, "email": EMAIL, "tier": "standard", "language": "zh-hans",
            "external_id": f"身份证 {ID_NUMBER} 卡 {CARD}", "first_seen_at_0": "2026-03-01", "first_seen_at_1": "10:00:00",
            "identities-TOTAL_FORMS": "0", "identities-INITIAL_FORMS": "0"}
    assert browser.post("/admin/helpdesk/customer/add/", form).status_code == 500

    mails = capture.error_mails()
    assert len(mails) == 3, "each crash mails the administrators"
    leaks = findings(capture.everything(), PII)
    assert not leaks, (
        "Customer data escaped (error mails need DEFAULT_EXCEPTION_REPORTER = "
        "\"helpdesk.error_reports.PiiSafeExceptionReporter\" in settings):\n" + "\n".join(leaks)
    )


def test_the_error_report_keeps_names_and_blanks_what_the_customer_typed():
    request = RequestFactory().post(f"/admin/helpdesk/customer/add/?phone={PHONE}", {"email": EMAIL, "name": NAME},
                                    HTTP_REFERER=f"https://helpdesk.example.com/admin/?q={CARD}")
    request.COOKIES["sessionid"] = "abc"
    try:
        raise ValueError(f'duplicate key value violates unique constraint DETAIL: Key (id_number)=({ID_NUMBER}) exists.')
    except ValueError as error:
        text = PiiSafeExceptionReporter(request, type(error), error, sys.exc_info()[2], is_email=True).get_traceback_text()
    assert not findings([text], PII), text
    for name in ("phone", "email", "name", "sessionid", "QUERY_STRING", "HTTP_REFERER"):
        assert f"{name} = '********************'" in text
    assert "Request URL: http://testserver/admin/helpdesk/customer/add/\n" in text


@pytest.mark.parametrize("text", [
    "call 139 1234 5678", "call 139-1234-5678", "call +8613912345678", "mail wang.xiaoming%40example.cn",
    "name \\u738b\\u5c0f\\u660e", "id 11010519491231002x", "card 6222 0212 3456 7890 123", "q=%E7%8E%8B%E5%B0%8F%E6%98%8E",
])
def test_the_scan_sees_through_the_usual_disguises(text):
    assert findings([text], PII)


def test_the_scan_leaves_masked_values_alone():
    assert not findings(["139******78 w***@example.cn 110105********002X 6222 **** **** 0123 王**"], PII)


def test_a_failing_survey_request_logs_no_link_token(capture, error_mails, monkeypatch, support_team, mailoutbox):
    """The survey link's signed token is the key to the customer's rating: access lines name the
    path with <token>, and so must Django's own lines (django.request, django.security.csrf) and
    the error mail a crash sends."""
    from tickets import csat

    from ..factories import TicketFactory

    live = csat.on_solved(TicketFactory(team=support_team, status=Ticket.Status.SOLVED))
    expired = csat.on_solved(TicketFactory(team=support_team, status=Ticket.Status.SOLVED))
    type(expired).objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    tokens = {"live": csat.survey_token(live), "expired": csat.survey_token(expired), "tampered": "made-up-token-x7"}
    path = {name: f"/survey/{token}/" for name, token in tokens.items()}

    browser = Client(raise_request_exception=False)
    assert browser.get(path["tampered"]).status_code == 400
    assert browser.get(path["expired"]).status_code == 410
    assert browser.put(path["live"]).status_code == 405  # Method Not Allowed: django.request
    assert Client(enforce_csrf_checks=True).post(path["live"], {"stars": "5"}).status_code == 403  # CSRF
    monkeypatch.setattr(csat, "survey_for_token", lambda token: (_ for _ in ()).throw(RuntimeError("cache down")))
    assert browser.get(path["live"]).status_code == 500

    lines = [line for line in capture.logs if "django.request" in line or "django.security" in line]
    assert len(lines) >= 3, "Django should have logged the 405, the CSRF refusal and the crash"
    assert any("/survey/<token>/" in line for line in lines)
    assert capture.error_mails(), "the crash should have mailed the administrators"
    leaks = findings(capture.everything(), tokens)
    assert not leaks, "A survey token escaped:\n" + "\n".join(leaks)
