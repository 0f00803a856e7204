"""Login protection (django-axes, helpdesk.login_protection): LOGIN_FAILURE_LIMIT wrong passwords
lock that username from that address for LOGIN_LOCKOUT_MINUTES; administrators unlock."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from axes.apps import AppConfig as AxesAppConfig
from axes.models import AccessAttempt, AccessLog
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from helpdesk.login_protection import client_ip, lockout_message

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # tests.factories.UserFactory's
WRONG = "Wr0ng-guess-7"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


def log_in(client: Client, username: str, password: str, **headers: str):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"},
                       headers=headers)


def fail(client: Client, username: str, times: int, **headers: str):
    response = None
    for _attempt in range(times):
        response = log_in(client, username, WRONG, **headers)
    return response


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def locked(response) -> bool:
    return response.status_code == 429


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_that_username_even_against_the_right_password(client, alice):
    limit = django_settings.AXES_FAILURE_LIMIT
    assert limit == 5
    fourth = fail(client, "alice", limit - 1)
    assert fourth.status_code == 200  # the login form again, with its error
    assert locked(fail(client, "alice", 1))
    refused = log_in(client, "alice", PASSWORD)
    assert locked(refused)
    assert "_auth_user_id" not in client.session


@time_machine.travel(T0, tick=False)
def test_the_locked_page_says_for_how_long_and_whom_to_ask_in_english(client, alice):
    fail(client, "alice", 5)
    page = log_in(client, "alice", PASSWORD, **{"Accept-Language": "en"})
    text = page.content.decode()
    assert locked(page) and page["Content-Language"] == "en"
    assert ("Too many failed login attempts: signing in is locked for 15 minutes. "
            "To sign in sooner, ask an administrator to unlock it.") in text
    assert 'id="login-locked"' in text


@time_machine.travel(T0, tick=False)
def test_the_locked_page_speaks_the_sites_language(client, alice):
    fail(client, "alice", 5)
    page = log_in(client, "alice", PASSWORD)  # no Accept-Language: LANGUAGE_CODE, zh-hans
    assert locked(page) and page["Content-Language"] == "zh-hans"
    with translation.override("zh-hans"):
        expected = lockout_message(15)
    assert escape(expected) in page.content.decode()


def test_the_message_counts_minutes_in_the_singular_too():
    with translation.override("en"):
        assert "locked for 1 minute." in lockout_message(1)
        assert "Ask an administrator to unlock it." in lockout_message(None)  # a lock without cool-off


@time_machine.travel(T0, tick=False)
def test_a_locked_name_that_exists_and_one_that_does_not_get_the_same_page(client, alice):
    fail(client, "alice", 5)
    fail(client, "nobody-here", 5)
    real = log_in(client, "alice", PASSWORD)
    made_up = log_in(client, "nobody-here", PASSWORD)
    assert locked(real) and locked(made_up)
    assert real.content == made_up.content


def test_another_address_or_another_username_is_not_locked(alice, bob):
    attacker = from_address("203.0.113.7")
    fail(attacker, "alice", 5)
    assert locked(log_in(attacker, "alice", PASSWORD))
    assert signed_in(log_in(from_address("198.51.100.20"), "alice", PASSWORD))  # alice at her desk
    assert signed_in(log_in(attacker, "bob", PASSWORD))  # a colleague behind the same address


def test_a_success_before_the_limit_starts_the_count_again(alice):
    browser = from_address("198.51.100.20")
    fail(browser, "alice", 4)
    assert signed_in(log_in(browser, "alice", PASSWORD))
    browser.logout()
    assert fail(browser, "alice", 4).status_code == 200
    assert signed_in(log_in(browser, "alice", PASSWORD))


def test_the_lock_ends_after_the_cool_off(client, alice):
    with time_machine.travel(T0, tick=False):
        fail(client, "alice", 5)
    with time_machine.travel(T0 + timedelta(minutes=15, seconds=1), tick=False):
        assert signed_in(log_in(client, "alice", PASSWORD))


def test_retrying_while_locked_neither_counts_nor_prolongs_the_lock(client, alice):
    with time_machine.travel(T0, tick=False):
        fail(client, "alice", 5)
    with time_machine.travel(T0 + timedelta(minutes=10, seconds=30), tick=False):
        page = log_in(client, "alice", WRONG, **{"Accept-Language": "en"})
        assert locked(page) and "locked for 5 minutes." in page.content.decode()  # what is left
        assert locked(log_in(client, "alice", PASSWORD))
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 5
    with time_machine.travel(T0 + timedelta(minutes=14, seconds=59), tick=False):
        assert locked(log_in(client, "alice", PASSWORD))
    with time_machine.travel(T0 + timedelta(minutes=15, seconds=1), tick=False):
        assert signed_in(log_in(client, "alice", PASSWORD))


def test_an_administrator_unlocks_by_deleting_the_attempt_in_the_admin(client, alice, ada):
    fail(client, "alice", 5)
    [attempt] = AccessAttempt.objects.filter(username="alice")
    assert not ada.is_superuser
    administrator = Client()
    administrator.force_login(ada)
    listing = administrator.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and attempt in listing.context["cl"].result_list
    confirm = administrator.get(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]))
    assert confirm.status_code == 200
    deleted = administrator.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert signed_in(log_in(client, "alice", PASSWORD))


def test_other_roles_do_not_see_login_attempts(client, alice, lena, olga):
    for user in (alice.user, lena.user, olga):
        client.force_login(user)
        assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


def test_the_axes_command_unlocks_a_username(client, alice):
    fail(client, "alice", 5)
    call_command("axes_reset_username", "alice", stdout=io.StringIO())
    assert signed_in(log_in(client, "alice", PASSWORD))


def test_a_made_up_forwarded_address_is_ignored_without_a_proxy(client, alice):
    for hop in range(5):  # a new "address" on every attempt
        response = log_in(client, "alice", WRONG, **{"X-Forwarded-For": f"192.0.2.{hop}"})
    assert locked(response)
    assert locked(log_in(client, "alice", PASSWORD, **{"X-Forwarded-For": "192.0.2.99"}))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


@pytest.fixture
def behind_proxy(settings):
    """BEHIND_TLS_PROXY=true: settings give DRF (and so axes) one trusted proxy."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def test_behind_the_proxy_the_last_forwarded_hop_is_the_address(behind_proxy, alice):
    proxy = from_address("10.0.0.2")
    # The caller wrote the first hop itself; the proxy appended the address it saw.
    fail(proxy, "alice", 5, **{"X-Forwarded-For": "192.0.2.1, 203.0.113.7"})
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    assert locked(log_in(proxy, "alice", PASSWORD, **{"X-Forwarded-For": "192.0.2.2, 203.0.113.7"}))
    # Another client behind the same proxy is not locked out with the attacker.
    assert signed_in(log_in(proxy, "alice", PASSWORD, **{"X-Forwarded-For": "198.51.100.20"}))


def test_the_address_function_reads_as_the_api_throttle_does(settings):
    factory = RequestFactory()
    spoofed = factory.post("/admin/login/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert client_ip(spoofed) == "198.51.100.1"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert client_ip(spoofed) == "192.0.2.1"
    chained = factory.post("/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1,  2001:DB8::1 ")
    assert client_ip(chained) == "2001:db8::1"
    direct = factory.post("/admin/login/", REMOTE_ADDR="198.51.100.1")
    assert client_ip(direct) == "198.51.100.1"
    garbage = factory.post("/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, not-an-address")
    assert client_ip(garbage) == "10.0.0.2"  # never a non-address in axes' column (PostgreSQL inet)


def test_no_password_reaches_the_logs(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    typed_in_the_wrong_box = "My-Secret-Passw0rd"
    log_in(client, typed_in_the_wrong_box, WRONG)  # the password typed as the username
    fail(client, "alice", 5)
    log_in(client, "alice", PASSWORD)  # refused while locked
    assert WRONG not in caplog.text and PASSWORD not in caplog.text and typed_in_the_wrong_box not in caplog.text
    failures = [r.getMessage() for r in caplog.records if r.name.startswith("axes") and r.levelno == logging.WARNING]
    assert any('username: "alice", ip_address: "127.0.0.1"' in line for line in failures)  # still useful
    assert any('username: "(not an account)"' in line for line in failures)


def test_axes_writes_no_banner_at_start(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="axes")
    monkeypatch.setattr(AxesAppConfig, "initialized", False)
    AxesAppConfig.initialize()
    assert "BEGIN" not in caplog.text


def test_a_successful_login_writes_no_access_log_row(client, alice):
    assert signed_in(log_in(client, "alice", PASSWORD))
    assert not AccessLog.objects.exists()
    alice.user.refresh_from_db()
    assert alice.user.last_login is not None  # what the access review reads instead


def test_api_keys_and_sessions_still_reach_the_api(api, client, alice):
    assert api.get("/api/v1/teams/").status_code == 200
    client.force_login(alice.user)
    assert client.get("/api/v1/teams/").status_code == 200
