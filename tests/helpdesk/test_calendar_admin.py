"""Calendars in the admin and their statutory dates."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from helpdesk.models import BusinessCalendar, CalendarDate
from helpdesk.services import sync_statutory_dates

pytestmark = pytest.mark.django_db


@pytest.fixture
def workweek() -> BusinessCalendar:
    return BusinessCalendar.objects.get(slug="cn-workweek")


def test_cn_workweek_ships_with_national_day_and_its_make_up_saturday(workweek):
    assert workweek.dates.get(date=date(2026, 10, 1)).kind == CalendarDate.Kind.CLOSED
    make_up = workweek.dates.get(date=date(2026, 10, 10))
    assert (make_up.kind, make_up.name) == (CalendarDate.Kind.WORKING, "国庆节调休")


def test_a_date_entered_by_hand_survives_a_statutory_sync(workweek):
    workweek.dates.filter(date=date(2026, 10, 8)).delete()
    workweek.dates.create(date=date(2026, 10, 8), kind=CalendarDate.Kind.CLOSED, name="公司团建")
    workweek.dates.filter(date=date(2026, 10, 1)).delete()  # lost by mistake: the sync restores it
    assert sync_statutory_dates(calendar=workweek) == 1
    assert sync_statutory_dates(calendar=workweek) == 0  # a second run changes nothing
    assert workweek.dates.get(date=date(2026, 10, 8)).name == "公司团建"
    assert workweek.dates.get(date=date(2026, 10, 1)).source == CalendarDate.Source.STATUTORY


@time_machine.travel("2026-11-23 10:00 +08:00", tick=False)
def test_the_admin_warns_when_next_years_holidays_are_missing(client, ada, workweek):
    client.force_login(ada)
    page = client.get(reverse("admin:helpdesk_businesscalendar_change", args=[workweek.pk]))
    assert page.status_code == 200
    assert [str(m) for m in page.context["messages"]][0].count("2027") == 1
    listing = client.get(reverse("admin:helpdesk_businesscalendar_changelist")).content.decode()
    assert "2027" in listing


@time_machine.travel("2026-11-23 10:00 +08:00", tick=False)
def test_a_calendar_without_holidays_gets_no_warning(client, ada):
    always = BusinessCalendar.objects.get(slug="24x7")
    client.force_login(ada)
    page = client.get(reverse("admin:helpdesk_businesscalendar_change", args=[always.pk]))
    assert list(page.context["messages"]) == []


def test_an_administrator_adds_a_holiday_and_bad_hours_are_a_form_error(client, ada, workweek):
    client.force_login(ada)
    url = reverse("admin:helpdesk_businesscalendar_change", args=[workweek.pk])
    form = {
        "slug": workweek.slug, "name": workweek.name, "time_zone": "Asia/Shanghai", "holiday_region": "CN",
        "workday_hours": "09:00-18:00",
        "hours-TOTAL_FORMS": 0, "hours-INITIAL_FORMS": 0,
        "dates-TOTAL_FORMS": 1, "dates-INITIAL_FORMS": 0,
        "dates-0-date": "2027-01-01", "dates-0-kind": "working", "dates-0-name": "年会", "dates-0-hours": "9-18",
    }
    page = client.post(url, form)
    assert page.status_code == 200 and "09:00-12:00" in page.content.decode()  # the error shows the format
    form["dates-0-hours"] = "10:00-16:00"
    assert client.post(url, form).status_code == 302
    assert workweek.dates.get(date=date(2027, 1, 1)).hours == "10:00-16:00"


def test_an_unknown_time_zone_is_a_form_error(client, ada):
    client.force_login(ada)
    page = client.post(
        reverse("admin:helpdesk_businesscalendar_add"),
        {"slug": "x", "name": "X", "time_zone": "Mars/Olympus", "workday_hours": "09:00-18:00",
         "hours-TOTAL_FORMS": 0, "hours-INITIAL_FORMS": 0, "dates-TOTAL_FORMS": 0, "dates-INITIAL_FORMS": 0},
    )
    assert page.status_code == 200 and "Mars/Olympus" in page.content.decode()
    assert not BusinessCalendar.objects.filter(slug="x").exists()


def test_working_hours_entered_twice_count_once(workweek):
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from helpdesk.calendars import business_seconds_between
    from helpdesk.queries import schedule_for

    workweek.hours.create(weekday=0, start=time(13), end=time(20))  # overlaps 09:00-18:00 on Mondays
    workweek.save()
    monday = datetime(2026, 11, 23, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert business_seconds_between(schedule_for(workweek), monday, monday.replace(hour=23)) == 11 * 3600
