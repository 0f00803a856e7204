"""Failed API authentication is throttled per address and key prefix, logged and audited;
an Idempotency-Key replay compares the JSON, not its bytes."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from helpdesk import audit
from helpdesk.api_keys import create_api_key
from helpdesk.models import ApiAuthFailure
from tickets.models import Ticket

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"
TICKETS = "/api/v1/tickets/"


def client_from(address: str, key: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def wrong_key(prefix: str | None = None) -> str:
    return f"hd_{prefix or secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def test_thirty_wrong_keys_from_one_address_are_then_refused_with_retry_after(integration, settings):
    settings.API_AUTH_FAILURE_SPREAD_LIMIT = 30  # the shipped default, stated for the reader
    answers = [client_from("198.51.100.7", wrong_key()).get(ME) for _ in range(30)]
    assert {answer.status_code for answer in answers} == {401}
    refused = client_from("198.51.100.7", wrong_key()).get(ME)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    # The address is locked for every key (someone trying made-up keys), the right one included;
    # another address is not.
    assert client_from("198.51.100.7", integration[1]).get(ME).status_code == 429
    assert client_from("198.51.100.8", integration[1]).get(ME).status_code == 200
    assert ApiAuthFailure.objects.count() == 30  # refusals while locked record nothing


def test_guessing_one_keys_secret_locks_that_key_from_that_address_only(integration, settings):
    settings.API_AUTH_FAILURE_LIMIT = 10
    prefix = integration[0].prefix
    for _ in range(10):
        assert client_from("198.51.100.7", wrong_key(prefix)).get(ME).status_code == 401
    assert client_from("198.51.100.7", integration[1]).get(ME).status_code == 429
    # Another key used from the same address (an office behind one NAT), and this key used
    # from elsewhere, still work.
    _other, other_plain = create_api_key(name="crm", scope="read")
    assert client_from("198.51.100.7", other_plain).get(ME).status_code == 200
    assert client_from("203.0.113.9", integration[1]).get(ME).status_code == 200


def test_the_lock_ends_after_the_lockout_minutes(integration, settings):
    settings.API_AUTH_FAILURE_LIMIT = 3
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(3):
            client_from("198.51.100.7", wrong_key(integration[0].prefix)).get(ME)
        assert client_from("198.51.100.7", integration[1]).get(ME).status_code == 429
        traveller.shift(timedelta(minutes=settings.API_AUTH_LOCKOUT_MINUTES, seconds=1))
        assert client_from("198.51.100.7", integration[1]).get(ME).status_code == 200


def test_the_address_is_read_as_drfs_throttles_read_it(integration, settings):
    """Without a trusted proxy X-Forwarded-For is the caller's to choose: it must not start a new count."""
    settings.API_AUTH_FAILURE_SPREAD_LIMIT = 3
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    for n in range(3):
        client = client_from("198.51.100.7", wrong_key())
        client.get(ME, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert client_from("198.51.100.7", wrong_key()).get(ME, HTTP_X_FORWARDED_FOR="10.0.0.99").status_code == 429
    assert set(ApiAuthFailure.objects.values_list("address", flat=True)) == {"198.51.100.7"}


def test_a_failure_is_logged_at_warning_without_the_key_and_is_in_the_audit_trail(caplog):
    key = wrong_key("abcdef12")
    with caplog.at_level(logging.WARNING, logger="helpdesk.api.auth_failures"):
        assert client_from("198.51.100.7", key).get(ME).status_code == 401
    [record] = [r for r in caplog.records if r.name == "helpdesk.api.auth_failures"]
    line = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "198.51.100.7" in line and "abcdef12" in line and key.split("_", 2)[2] not in line
    [entry] = [e for e in audit.page(audit.Filters(record_type="helpdesk.apiauthfailure"))[0]]
    assert entry.action == audit.CREATED and "198.51.100.7" in entry.object and "hd_abcdef12" in entry.object


def new_ticket(**overrides) -> dict:
    return {
        "subject": "我的订单没到",
        "channel": "email",
        "priority": "normal",
        "customer": {"name": "王芳", "email": "wang@example.com"},
        "message": {"body": "您好，我的订单还没到。"},
        **overrides,
    }


def test_an_idempotent_replay_of_the_same_json_in_another_key_order_gets_the_first_answer(api):
    body = new_ticket()
    first = api.post(TICKETS, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=True)
    again = api.post(TICKETS, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    other = api.post(TICKETS, json.dumps(new_ticket(subject="另一个")), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
