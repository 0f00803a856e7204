"""/api/v1/calendars/: other systems tell a customer when to expect an answer."""

from __future__ import annotations

from datetime import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import BusinessCalendar

pytestmark = pytest.mark.django_db


def count_queries(api, url):
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_calendar_list_costs_the_same_queries_for_2_calendars_or_12(api):
    api.get("/api/v1/calendars/")
    few = count_queries(api, "/api/v1/calendars/")
    for index in range(10):
        calendar = BusinessCalendar.objects.create(slug=f"c{index}", name=f"C{index}")
        calendar.hours.create(weekday=0, start=time(9), end=time(17))
    assert count_queries(api, "/api/v1/calendars/") == few


def test_the_shipped_calendars_are_listed_with_their_hours(api):
    response = api.get("/api/v1/calendars/")
    slugs = {row["slug"]: row for row in response.json()["results"]}
    assert set(slugs) >= {"cn-workweek", "24x7"}
    assert [(h["weekday"], h["start"], h["end"]) for h in slugs["cn-workweek"]["hours"]] == [
        (day, "09:00", "18:00") for day in range(5)
    ]


def test_a_question_before_national_day_is_due_after_it(api):
    response = api.get("/api/v1/calendars/cn-workweek/due", {"start": "2026-09-30T17:00:00+08:00", "seconds": 7200})
    assert response.status_code == 200
    assert response.json() == {"due": "2026-10-08T10:00:00+08:00"}


def test_a_calendar_is_named_by_id_too(api):
    calendar = BusinessCalendar.objects.get(slug="24x7")
    response = api.get(f"/api/v1/calendars/{calendar.pk}/due", {"start": "2026-10-01T03:00:00Z", "seconds": 15})
    assert response.json() == {"due": "2026-10-01T11:00:15+08:00"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"seconds": 60}, "start"),
        ({"start": "yesterday", "seconds": 60}, "start"),
        ({"start": "2026-10-01T03:00:00Z"}, "seconds"),
        ({"start": "2026-10-01T03:00:00Z", "seconds": -1}, "seconds"),
        ({"start": "2026-10-01T03:00:00Z", "seconds": "ten"}, "seconds"),
        ({"start": "2026-10-01T03:00:00Z", "seconds": 10**12}, "seconds"),
        ({"start": "9999-12-31T12:00:00Z", "seconds": 60}, "start"),
        ({"start": "0001-01-01T00:00:00Z", "seconds": 60}, "start"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, query, field):
    response = api.get("/api/v1/calendars/cn-workweek/due", query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_calendar_without_working_time_is_a_400_not_a_hang(api):
    BusinessCalendar.objects.create(slug="never", name="Never open")
    response = api.get("/api/v1/calendars/never/due", {"start": "2026-10-01T03:00:00Z", "seconds": 60})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_working_time"


def test_an_unknown_calendar_is_a_404(api):
    assert api.get("/api/v1/calendars/nope/due", {"start": "2026-10-01T03:00:00Z", "seconds": 1}).status_code == 404
    assert api.get(reverse("calendar-detail", args=["999"])).status_code == 404
