"""The API does what its OpenAPI schema says, for each role that uses it (Schemathesis).

Each run generates requests from /api/schema/ for every operation, schema-valid (positive) and
schema-violating (negative), sends them through the real WSGI stack with a role's API key, and
runs Schemathesis's checks on every answer: no 5xx; status code, content type, headers and body
as documented; negative data refused, positive data accepted; authentication enforced. Any
failure fails the test with the list of what was found.

Positive data may still be refused for what no schema can say: a well-formed id of a row that
does not exist, or a state of the data (`KNOWN_REFUSALS`, each a field or a domain code).

Marked `api_contract`; the sweep over every role is also `api_contract_full`, which `.ci/run`
runs on SQLite only: PostgreSQL gets the write key's run, which covers every operation.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from helpdesk.api_keys import create_api_key

from ..security.world import build_world

pytestmark = [pytest.mark.django_db, pytest.mark.api_contract]

# Examples per operation and generation mode for the write key, which reaches every operation;
# the other roles get half, since what differs for them is mostly what they may see. Derandomized
# in CI, so a run is repeatable; raise API_CONTRACT_EXAMPLES locally to search harder.
EXAMPLES = int(os.environ.get("API_CONTRACT_EXAMPLES", "6"))

# 400s for schema-valid requests that only stored data can explain: (field named, or domain code).
KNOWN_REFUSALS = frozenset(
    {
        # Ids and codes that are well formed but name no row the caller may see.
        "team", "assignee", "agent", "customer.id", "category", "ticket", "id", "message.agent",
        # Rules between fields or against the clock: `to` not before `from` (nor a year after),
        # a rating not in the future.
        "to", "rated_at",
        # The state of the data, not the shape of the request.
        "code:not_an_agent", "code:not_your_review", "code:not_assigned", "code:no_working_time",
        "code:illegal_transition", "code:ticket_closed", "code:not_escalated", "code:same_team",
        "code:required",
        # An import file is a string to the schema; its lines are checked against the import's rules.
        "code:invalid_lines",
    }
)


@schemathesis.serializer("application/x-ndjson", "application/jsonl")
def _json_lines(ctx, value) -> bytes:
    """Import bodies: whatever was generated, sent as text, one line per item when a list."""
    items = value if isinstance(value, list) else [value]
    return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in items).encode()


def _explained(response) -> bool:
    """Whether a refusal of schema-valid data is one of KNOWN_REFUSALS."""
    if response.status_code != 400:
        return False
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if f"code:{error.get('code')}" in KNOWN_REFUSALS and error.get("code") != "invalid":
        return True  # a domain code names the rule, whatever fields it points at
    named = set(error.get("fields") or {}) or {f"code:{error.get('code')}"}
    return named <= KNOWN_REFUSALS


def _sweep(application, key: str, examples: int) -> dict[tuple[str, str], list[str]]:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    headers = {"Authorization": f"Bearer {key}"}
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        if "application/x-ndjson" in json.dumps(operation.definition.raw.get("requestBody", {})):
            # A JSON Lines body is text: no generated value violates "a string" once sent.
            modes = [GenerationMode.POSITIVE]
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=examples, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=list(HealthCheck), database=None,
            )
            def run(case) -> None:
                response = case.call(headers=headers)
                try:
                    case.validate_response(response, headers=headers, transport_kwargs={"headers": dict(headers)})
                except FailureGroup as group:
                    for failure in group.exceptions:
                        if type(failure).__name__ == "RejectedPositiveData" and _explained(response):
                            continue
                        found[(operation.label, failure.title)].append(str(group)[:1500])

            run()
    assert operations >= 40
    return found


ROLES = {
    "read_key": lambda w: create_api_key(name="reporting", scope="read")[1],
    "write_key": lambda w: w["integration"][1],
    "agent": lambda w: create_api_key(name="alice-tools", scope="write", user=w["alice"].user)[1],
    "team_lead": lambda w: create_api_key(name="lena-tools", scope="write", user=w["lena"].user)[1],
    "inspector": lambda w: create_api_key(name="iris-tools", scope="write", user=w["iris"])[1],
}


@pytest.mark.parametrize(
    "role",
    [pytest.param(role, marks=[] if role == "write_key" else [pytest.mark.api_contract_full]) for role in ROLES],
)
def test_the_api_answers_as_its_schema_says(role, alice, lena, bob, iris, tom, ada, olga, integration, settings):
    users = {"agent": alice.user, "lead": lena.user, "inspector": iris, "trainer": tom, "admin": ada,
             "key": integration[0].user, "norole": olga}
    build_world(alice=alice, lena=lena, bob=bob, users=users, key=integration[1])
    key = ROLES[role]({"integration": integration, "alice": alice, "lena": lena, "iris": iris})
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Turned off here on purpose, and only here: a sweep sends more than a minute's budget of
    # requests with one key, and Schemathesis's auth check sends a wrong key on every
    # operation, which the failed-authentication lock would answer with 429 after 30.
    settings.API_THROTTLE_RATE = "100000/min"
    settings.API_AUTH_FAILURE_SPREAD_LIMIT = 100000
    settings.API_AUTH_FAILURE_LIMIT = 100000
    from config.wsgi import application

    # The real WSGI handler closes the database connection after each request, which would
    # end the test's transaction; Django's test client disconnects the same receivers.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        found = _sweep(application, key, EXAMPLES if role == "write_key" else max(1, EXAMPLES // 2))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert not found, "\n\n".join(f"{label}: {title}\n{examples[0]}" for (label, title), examples in sorted(found.items()))
