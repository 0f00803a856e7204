"""API keys, scopes, roles and throttling."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation
from rest_framework.test import APIClient

from helpdesk.api_keys import create_api_key, revoke_api_key
from helpdesk.models import ApiKey

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db
TICKETS = "/api/v1/tickets/"


def test_no_key_is_a_401_in_the_error_shape(anonymous_api):
    response = anonymous_api.get(TICKETS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer hd_nope_nope", "Bearer garbage", "Bearer hd_12345678_"])
def test_a_wrong_key_is_a_401(anonymous_api, integration, header):
    anonymous_api.credentials(HTTP_AUTHORIZATION=header)
    assert anonymous_api.get(TICKETS).status_code == 401


def test_keys_are_stored_hashed_and_record_their_last_use(api, integration):
    api_key, plain = integration
    secret = plain.split("_", 2)[2]  # hd_<prefix>_<secret>; the secret itself may hold "_"
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert secret not in stored.key_hash and plain not in stored.key_hash and stored.last_used_at is None
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert api.get(TICKETS).status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_a_revoked_key_is_refused_at_once(api, integration):
    assert api.get(TICKETS).status_code == 200
    revoke_api_key(api_key=integration[0])
    assert api.get(TICKETS).status_code == 401


def test_a_read_key_reads_but_cannot_write(db):
    _, plain = create_api_key(name="warehouse", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get(TICKETS).status_code == 200
    response = client.post(TICKETS, {}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API key is read-only."


def test_the_command_prints_the_key_alone_on_its_last_line(capsys, db):
    call_command("create_api_key", "crm", "--scope", "write")
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert key.startswith("hd_") and " " not in key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(TICKETS).status_code == 200


def test_the_command_refuses_a_duplicate_name_and_an_unknown_user(db):
    call_command("create_api_key", "crm")
    with pytest.raises(CommandError, match="exists already"), translation.override("en"):
        call_command("create_api_key", "crm")
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_key", "mine", "--user", "ghost")


def test_a_personal_key_sees_what_its_owner_sees(alice, support_team, billing_team):
    TicketFactory(team=support_team, subject="ours")
    TicketFactory(team=billing_team, subject="theirs")
    _, plain = create_api_key(name="alice's script", scope="read", user=alice.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert [t["subject"] for t in client.get(TICKETS).json()["results"]] == ["ours"]


def test_staff_use_the_api_with_their_session(client, alice, support_team):
    TicketFactory(team=support_team)
    client.force_login(alice.user)
    assert len(client.get(TICKETS).json()["results"]) == 1


def test_a_role_without_the_permission_is_refused(client, olga):
    client.force_login(olga)
    assert client.get(TICKETS).status_code == 403


def test_an_inspector_reads_tickets_with_the_customer_masked(client, iris):
    TicketFactory(customer__name="韩梅梅", customer__phone="13912345678")
    client.force_login(iris)
    (ticket,) = client.get(TICKETS).json()["results"]
    assert ticket["customer"]["name"] == "韩**" and ticket["customer"]["phone"] == "139******78"
    assert client.post(TICKETS, {}, content_type="application/json").status_code == 403


def test_each_key_has_its_own_budget_and_a_429_says_when_to_retry(api, settings, integration):
    from django.core.cache import cache

    cache.clear()
    settings.API_THROTTLE_RATE = "3/min"
    statuses = [api.get(TICKETS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    last = api.get(TICKETS)
    assert last.json()["error"]["code"] == "throttled" and int(last.headers["Retry-After"]) > 0
    _, other = create_api_key(name="other", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get(TICKETS).status_code == 200
    cache.clear()


def test_an_integrator_checks_their_key(api):
    assert api.get("/api/v1/me").json() == {"username": "api-shop", "key": "shop", "scope": "write"}
