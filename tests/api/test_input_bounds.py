"""What Schemathesis found, each pinned by a plain test: dates in sane years, a page size that
is a number, working hours as wall-clock times, and error answers the schema documents."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db
TICKETS = "/api/v1/tickets/"


@pytest.mark.parametrize("value", ["0619-03-01T12:00:00+08:00", "1999-12-31T23:59:59Z", "2101-01-01T00:00:00Z"])
def test_an_instant_outside_the_years_in_a_filter_is_a_400_naming_it(api, value):
    response = api.get(TICKETS, {"created_after": value})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["created_after"]


def test_an_instant_outside_the_years_in_a_body_is_a_400_naming_it(api):
    body = {
        "channel": "web_chat", "conversation_id": "c-619",
        "customer": {"name": "王芳"}, "message": {"body": "你好", "sent_at": "0619-03-01T12:00:00+08:00"},
    }
    response = api.post("/api/v1/messages/ingest", body, format="json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["message.sent_at"]


def test_the_years_are_a_setting(api, settings):
    settings.API_MAX_YEAR = 2300
    assert api.get(TICKETS, {"created_after": "2200-01-01T00:00:00Z"}).status_code == 200


@pytest.mark.parametrize("query", ["from=1999-12-31&to=2000-01-05", "from=2150-01-01&to=2150-01-05"])
def test_a_report_day_outside_the_years_is_a_400_naming_it(api, query):
    response = api.get(f"/api/v1/reports/summary?{query}")
    fields = response.json()["error"]["fields"]
    assert response.status_code == 400 and fields and set(fields) <= {"from", "to"}


def test_a_day_outside_the_years_in_the_sample_runs_filter_is_a_400(api):
    response = api.get("/api/v1/qa/sample-runs/", {"date": "0619-03-01"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["date"]


# GET only: the client fixture is the same for every example.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page_size=st.one_of(st.sampled_from(["0", "-1", "true", "1.5", "", "abc", "１"]), st.text(max_size=5).filter(lambda t: not t.strip().isdigit())))
def test_a_page_size_that_is_no_whole_number_from_1_is_a_400_naming_it(api, page_size):
    response = api.get("/api/v1/teams/", {"page_size": page_size})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["page_size"]


def test_a_page_size_given_twice_is_a_400_and_a_large_one_is_cut_to_the_maximum(api):
    assert api.get("/api/v1/teams/?page_size=5&page_size=6").status_code == 400
    for _ in range(3):
        TicketFactory()
    for huge in ("1000000000000000000000", "9" * 5000):
        response = api.get(TICKETS, {"page_size": huge})
        assert response.status_code == 200 and len(response.json()["results"]) == 3


def test_working_hours_are_wall_clock_times_as_the_schema_says(api, anonymous_api):
    calendar = api.get("/api/v1/calendars/cn-workweek/").json()
    assert {(hours["start"], hours["end"]) for hours in calendar["hours"]} == {("09:00", "18:00")}
    schema = anonymous_api.get("/api/schema/?format=json").json()
    start = schema["components"]["schemas"]["WorkingHours"]["properties"]["start"]
    assert "format" not in start and start["pattern"] == "^([01][0-9]|2[0-3]):[0-5][0-9]$"


def test_every_operation_documents_its_error_answers(anonymous_api):
    schema = anonymous_api.get("/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
            if method == "post":
                assert {"400", "409"} <= set(operation["responses"]), (method, path)
    assert "Retry-After" in schema["paths"]["/api/v1/tickets/"]["get"]["responses"]["429"]["headers"]


def test_an_empty_choice_filter_is_no_filter_as_the_schema_says(api, anonymous_api):
    assert api.get("/api/v1/agents/?presence=").status_code == 200
    schema = anonymous_api.get("/api/schema/?format=json").json()
    [presence] = [p for p in schema["paths"]["/api/v1/agents/"]["get"]["parameters"] if p["name"] == "presence"]
    assert {"type": "string", "maxLength": 0} in presence["schema"]["anyOf"]


def test_an_empty_presence_patch_changes_nothing(alice):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(alice.user)
    response = client.patch("/api/v1/agents/me/", {}, format="json")
    assert response.status_code == 200 and response.json()["presence"] == alice.presence
