"""The operations dashboard in the admin, its CSV and XLSX exports and the SVG bar charts."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from helpdesk.models import Channel
from tests.factories import CategoryFactory, TicketFactory
from tickets import report_exports, reports
from tickets.admin_reports import default_range
from tickets.charts import bar_chart
from tickets.models import Csat, Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)  # default range: 1-30 November 2026
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
URL = "/admin/tickets/ticket/reports/"
CSV_URL = URL + "export.csv"
XLSX_URL = URL + "export.xlsx"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def at(day: int, hour: int, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def english(settings):
    """Labels are asserted in English (the site's default language is Chinese)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def frozen(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    with time_machine.travel(NOW, tick=False):
        yield


def _ticket(team, created: datetime, **extra) -> Ticket:
    return TicketFactory(team=team, created_at=created, **extra)


@pytest.fixture
def month(frozen, support_team, billing_team, alice, bob):
    """November at Support (four tickets) and Billing (one), October at Support (two)."""
    billing = CategoryFactory(code="rpt-billing", name="报表账单")
    evil = CategoryFactory(code="rpt-evil", name=FORMULA)
    solved = _ticket(support_team, at(3, 9), assignee=alice, category=billing, channel=Channel.WECHAT,
                     first_response_at=at(3, 10), solved_at=at(4, 9), public_replies=1, status=Ticket.Status.SOLVED)
    _ticket(support_team, at(3, 23), category=evil, channel=Channel.EMAIL, first_response_at=at(4, 1))
    _ticket(support_team, at(10, 9), category=evil)
    _ticket(support_team, at(30, 23), category=billing)  # the last hour of the range
    _ticket(billing_team, at(5, 9), assignee=bob, category=billing)
    _ticket(support_team, at(15, 9, month=10), category=billing)
    _ticket(support_team, at(20, 9, month=10))
    Csat.objects.create(ticket=solved, stars=5, rated_at=at(4, 12), agent=alice, team=support_team)
    return {"billing": billing, "evil": evil}


def _login(client, user):
    client.force_login(user)
    return client


# --- who may see it -----------------------------------------------------------------------


def test_the_default_range_is_the_last_thirty_days_up_to_yesterday():
    assert default_range(date(2026, 12, 1)) == NOVEMBER


def test_it_shows_an_administrator_every_team(client, ada, month, support_team, billing_team):
    response = _login(client, ada).get(URL)

    assert response.status_code == 200
    assert response.context["summary"] == reports.summary(start=NOVEMBER[0], end=NOVEMBER[1])
    assert response.context["summary"]["tickets_created"] == 5
    body = response.content.decode()
    assert body.count('class="report-chart"') == 5 and "<title" in body and "<desc" in body
    assert reverse("admin:reports-export-csv") + "?from=2026-11-01&amp;to=2026-11-30" in body


def test_it_shows_a_team_lead_only_their_team(client, lena, month, support_team):
    response = _login(client, lena.user).get(URL)

    assert response.status_code == 200
    expected = reports.summary(start=NOVEMBER[0], end=NOVEMBER[1], filters=reports.Filters(team=support_team.pk))
    assert response.context["summary"] == expected
    assert expected["tickets_created"] == 4
    assert f"team={support_team.pk}" in response.context["csv_url"]


def test_it_refuses_a_team_lead_another_team_with_a_form_error(client, lena, month, billing_team):
    response = _login(client, lena.user).get(URL, {"team": billing_team.pk})

    assert response.status_code == 200
    assert response.context["summary"] is None
    assert response.context["form"].errors["team"]


def test_it_refuses_a_team_lead_exports_of_another_team(client, lena, month, billing_team):
    response = _login(client, lena.user).get(CSV_URL, {"team": billing_team.pk})

    assert response.status_code == 302 and response["Location"].startswith(URL)


@pytest.mark.parametrize("persona", ["alice", "olga"])
@pytest.mark.parametrize("url", [URL, CSV_URL, XLSX_URL])
def test_it_refuses_agents_and_users_without_a_role(client, persona, url, request, month):
    user = request.getfixturevalue(persona)
    response = _login(client, getattr(user, "user", user)).get(url)

    assert response.status_code == 403


# --- the form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-11-30"}, "to"),  # over MAX_DAYS
        ({"from": "1900-01-01", "to": "1900-01-02"}, "from"),
        ({"team": "abc"}, "team"),
        ({"team": "99999"}, "team"),
        ({"channel": "fax"}, "channel"),
        ({"category": "nope"}, "category"),
        ({"agent": "-1"}, "agent"),
    ],
)
def test_it_answers_bad_input_with_form_errors(client, ada, month, query, field):
    response = _login(client, ada).get(URL, query)

    assert response.status_code == 200
    assert response.context["summary"] is None
    assert field in response.context["form"].errors


def test_it_filters_by_channel_agent_and_category(client, ada, month, alice):
    query = {"from": "2026-11-01", "to": "2026-11-30", "channel": "wechat", "agent": alice.pk, "category": "rpt-billing"}
    response = _login(client, ada).get(URL, query)

    filters = reports.Filters(agent=alice.pk, channel="wechat", category=month["billing"].pk)
    assert response.context["summary"] == reports.summary(start=NOVEMBER[0], end=NOVEMBER[1], filters=filters)
    assert response.context["summary"]["tickets_created"] == 1


# --- the files --------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _find(table: list, label: str) -> list:
    return next(row for row in table if row and row[0] == label)


def test_the_flat_table_holds_the_summary_and_its_changes(month, support_team):
    summary = reports.summary(start=NOVEMBER[0], end=NOVEMBER[1], filters=reports.Filters(team=support_team.pk))
    table = report_exports.rows(summary)

    assert table[0] == report_exports.header() and all(len(row) == 6 for row in table)
    created = _find(table, "Tickets created")
    assert created == ("Tickets created", 4, 2, summary["change"]["previous"]["tickets_created"],
                       summary["year_ago"]["tickets_created"], None)
    assert created[3] == 1.0
    rate = _find(table, "Resolution rate")
    assert rate[1:4] == (summary["resolution_rate"], summary["previous"]["resolution_rate"],
                         summary["change"]["previous"]["resolution_rate"])
    assert _find(table, "First response, mean (seconds)")[1] == summary["first_response_seconds"]["mean"] == 5400
    assert _find(table, "CSAT average stars")[1] == 5.0
    assert _find(table, "报表账单")[1] == 2
    hours = table[table.index(("Tickets created by hour of day", None, None, None, None, None)) + 1:][:24]
    assert [row[1] for row in hours] == summary["hourly"]


def test_the_csv_export_has_the_numbers_of_the_summary(client, ada, month):
    response = _login(client, ada).get(CSV_URL, {"from": "2026-11-01", "to": "2026-11-30"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="report_2026-11-01_2026-11-30.csv"' in response["Content-Disposition"]
    summary = reports.summary(start=NOVEMBER[0], end=NOVEMBER[1])
    table = _csv(response)
    assert _find(table, "Period") == ["Period", "2026-11-01 – 2026-11-30"]
    assert _find(table, "Tickets created")[1:3] == [str(summary["tickets_created"]), str(summary["previous"]["tickets_created"])]
    assert _find(table, "Tickets solved")[1] == "1"
    assert _find(table, "CSAT responses")[1] == "1"
    assert _find(table, "Channels") == ["Channels", "", "", "", "", ""]
    assert _find(table, "WeChat")[1] == "1"


def test_the_xlsx_export_has_the_numbers_of_the_summary(client, ada, month):
    response = _login(client, ada).get(XLSX_URL, {"from": "2026-11-01", "to": "2026-11-30"})

    assert response.status_code == 200
    assert 'filename="report_2026-11-01_2026-11-30.xlsx"' in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    cells = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    summary = reports.summary(start=NOVEMBER[0], end=NOVEMBER[1])
    start = cells.index(report_exports.header())
    assert cells[start:] == report_exports.rows(summary)


def test_it_writes_formula_like_names_as_text(client, ada, month, billing_team):
    billing_team.name = "@SUM(1+1)"
    billing_team.save()
    query = {"from": "2026-11-01", "to": "2026-11-30", "team": billing_team.pk}
    _login(client, ada)
    table = _csv(client.get(CSV_URL, {"from": "2026-11-01", "to": "2026-11-30"}))
    assert _find(table, "'" + FORMULA)[1] == "2"
    assert _find(_csv(client.get(CSV_URL, query)), "Team")[1] == "'@SUM(1+1)"

    sheet = load_workbook(io.BytesIO(client.get(XLSX_URL, query).content)).active
    texts = {cell.value: cell.data_type for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)}
    assert texts["@SUM(1+1)"] == "s"
    sheet = load_workbook(io.BytesIO(client.get(XLSX_URL, {"to": "2026-11-30"}).content)).active
    texts = {cell.value: cell.data_type for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)}
    assert texts[FORMULA] == "s"


def test_a_range_without_tickets_exports_blanks_not_errors(client, ada, frozen):
    _login(client, ada)
    query = {"from": "2026-11-01", "to": "2026-11-30"}
    assert client.get(URL, query).status_code == 200
    table = _csv(client.get(CSV_URL, query))
    assert _find(table, "Resolution rate")[1:] == ["", "", "", "", ""]
    assert load_workbook(io.BytesIO(client.get(XLSX_URL, query).content)).active["A1"].value == "Period"


def test_it_makes_a_constant_number_of_queries_whatever_the_data(client, ada, month, support_team):
    _login(client, ada)
    client.get(URL)  # warm the session and the content types

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    before = count()
    for day in range(1, 21):
        _ticket(support_team, at(day, 14), category=CategoryFactory(), channel=Channel.PHONE,
                first_response_at=at(day, 15), solved_at=at(day, 16))
    assert count() == before


# --- the charts ---------------------------------------------------------------------------------


def _heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]


def test_the_bars_are_proportional_to_the_values():
    svg = bar_chart([("a", 10), ("b", 5), ("c", 0)], chart_id="t", title="Volume", height=200)

    heights = _heights(svg)
    assert heights[0] == 164 and heights[1] == 82 and heights[2] == 0
    assert 'role="img"' in svg and 'aria-labelledby="t-title t-desc"' in svg
    assert '<title id="t-title">Volume</title>' in svg and "a: 10; b: 5; c: 0" in svg
    assert [text for text in re.findall(r'class="value">([^<]*)<', svg)] == ["10", "5", "0"]


def test_horizontal_bars_are_proportional_too():
    svg = bar_chart([("x", 3), ("y", 1)], chart_id="h", title="Top", horizontal=True)

    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)


def test_a_chart_without_data_draws_no_bars_and_does_not_divide_by_zero():
    assert _heights(bar_chart([("a", 0), ("b", 0)], chart_id="z", title="Empty")) == [0, 0]
    assert "<rect" not in bar_chart([], chart_id="e", title="Nothing")


def test_chart_labels_are_escaped():
    svg = bar_chart([("<script>", 1)], chart_id="x", title="<b>")

    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg


def test_shown_values_read_as_people_read_them():
    assert report_exports.shown_value(0.8125, report_exports.RATE) == "81.2%"
    assert report_exports.shown_value(3723, report_exports.SECONDS) == "1:02:03"
    assert report_exports.shown_value(None, report_exports.SCORE) == "—"
    assert report_exports.shown_change(0.25) == "▲ +25.0%" and report_exports.shown_change(None) == "—"


def test_yesterday_is_computed_in_the_site_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    with time_machine.travel(datetime(2026, 11, 30, 17, 0, tzinfo=ZoneInfo("UTC")), tick=False):  # 1 Dec in Shanghai
        from django.utils import timezone

        assert default_range(timezone.localdate())[1] == date(2026, 11, 30)
        assert timezone.localdate() - timedelta(days=1) == date(2026, 11, 30)


def test_the_ticket_list_links_to_the_reports_for_leads_and_administrators(client, lena, alice, billing_team):
    lena.teams.add(billing_team)  # a lead of two teams picks one on the page
    client.force_login(lena.user)
    assert reverse("admin:reports-dashboard") in client.get("/admin/tickets/ticket/").content.decode()
    assert client.get(reverse("admin:reports-dashboard")).status_code == 200
    client.force_login(alice.user)
    assert reverse("admin:reports-dashboard") not in client.get("/admin/tickets/ticket/").content.decode()
