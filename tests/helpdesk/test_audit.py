"""The audit trail: every change attributed to a user and, through the API, to its key; the
administrators' page that browses it (filters, cursor pages, CSV) at a flat query cost."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django import forms
from django.apps import apps
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient
from simple_history.models import registered_models

from helpdesk import admin_audit, audit, roles
from helpdesk.api_keys import create_api_key
from helpdesk.models import Customer, Team
from qa.models import Review, Scorecard
from tickets.models import Ticket

from ..factories import CustomerFactory, TeamFactory, TicketFactory, UserFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def audit_url(**params) -> str:
    from urllib.parse import urlencode

    return f"{reverse('admin:audit')}?{urlencode(params)}" if params else reverse("admin:audit")


def shown(client, **params) -> list[audit.Entry]:
    page = client.get(audit_url(**params))
    assert page.status_code == 200
    assert page.context["form"].is_valid(), page.context["form"].errors
    return page.context["entries"]


def key_client(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def submitted(page) -> dict:
    """What a browser posts back from an admin change page when nothing is touched."""
    data: dict = {}
    all_forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        all_forms += [inline.formset.management_form, *inline.formset.forms]
    for form in all_forms:
        for bound in form:
            widget, value = bound.field.widget, bound.value()
            if bound.field.disabled:
                continue
            if isinstance(widget, forms.MultiWidget):
                parts = value if isinstance(value, list) else widget.decompress(value)
                data.update({f"{bound.html_name}_{i}": "" if part is None else part for i, part in enumerate(parts)})
            elif isinstance(widget, forms.CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
            elif value is not None:
                data[bound.html_name] = value
    return data


def new_ticket(**overrides):
    body = {
        "subject": "退货申请", "channel": "web_chat", "category": "after_sales", "priority": "normal",
        "customer": {"external_id": "c-1", "name": "张三", "phone": "13800000000", "tier": "vip"},
        "message": {"body": "我要退货", "sent_at": "2026-11-23T09:00:00+08:00", "external_id": "m-1"},
    }
    return body | overrides


# --- attribution -----------------------------------------------------------------------------


def test_api_writes_are_recorded_with_the_keys_user_and_the_key(api, integration):
    api_key = integration[0]
    created = api.post("/api/v1/tickets/", new_ticket(), format="json")
    assert created.status_code == 201, created.json()
    ticket = Ticket.objects.get()
    assert api.patch(f"/api/v1/tickets/{ticket.reference}/", {"priority": "high"}, format="json").status_code == 200
    customer = ticket.customer
    assert api.patch(f"/api/v1/customers/{customer.pk}/", {"tier": "enterprise"}, format="json").status_code == 200

    rows = [*ticket.history.all(), *customer.history.all()]
    assert {row.history_type for row in ticket.history.all()} == {"+", "~"}
    assert customer.history.filter(history_type="~", tier="enterprise").exists()
    assert {(row.history_user_id, row.history_api_key_id) for row in rows} == {(api_key.user_id, api_key.pk)}


def test_a_staff_members_own_key_is_told_apart_from_their_clicks_in_the_admin(client, ada, support_team):
    api_key, plain = create_api_key(name="ada-script", scope="write", user=ada)
    ticket = TicketFactory()
    assert key_client(plain).patch(f"/api/v1/tickets/{ticket.reference}/", {"priority": "urgent"}, format="json").status_code == 200

    client.force_login(ada)
    url = reverse("admin:helpdesk_team_change", args=[support_team.pk])
    data = submitted(client.get(url)) | {"name": "Support desk"}
    assert client.post(url, data).status_code == 302

    by_key = ticket.history.latest()
    by_hand = support_team.history.latest()
    assert (by_key.history_user, by_key.history_api_key) == (ada, api_key)
    assert (by_hand.history_user, by_hand.history_api_key_id, by_hand.name) == (ada, None, "Support desk")
    entries = {(e.record_type, e.api_key_id) for e in shown(client, user="ada")}
    assert entries == {("tickets.ticket", api_key.pk), ("helpdesk.team", None)}
    with translation.override("en"):
        page = client.get(audit_url(user="ada"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"key ada-script ({api_key.prefix}…)" in page


def test_admin_changes_to_a_team_and_to_a_users_groups_are_attributed_and_shown(client, ada, olga, support_team):
    client.force_login(ada)
    team_url = reverse("admin:helpdesk_team_change", args=[support_team.pk])
    assert client.post(team_url, submitted(client.get(team_url)) | {"name": "First line"}).status_code == 302
    user_url = reverse("admin:auth_user_change", args=[olga.pk])
    agents = Group.objects.get(name=roles.AGENT)
    assert client.post(user_url, submitted(client.get(user_url)) | {"groups": [agents.pk]}).status_code == 302
    assert list(olga.groups.all()) == [agents]

    with translation.override("en"):
        entries = shown(client, user="ada")
    by_type = {e.record_type: e for e in entries}
    assert set(by_type) == {"helpdesk.team", "auth.user"}  # the team's admin log entry is its history row
    team_change, user_change = by_type["helpdesk.team"], by_type["auth.user"]
    assert (team_change.user, team_change.action, team_change.object, team_change.object_id) == (
        ada, audit.CHANGED, "First line", str(support_team.pk)
    )
    assert team_change.url == reverse("admin:helpdesk_team_history", args=[support_team.pk])
    assert (user_change.user, user_change.action, user_change.object) == (ada, audit.CHANGED, "olga")
    assert "Groups" in user_change.reason
    assert user_change.url == user_url


def test_a_ticket_import_through_the_api_is_attributed_to_the_key(api, integration):
    api_key = integration[0]
    line = {
        "external_id": "old-1", "subject": "包裹丢了", "channel": "web_chat", "category": "after_sales",
        "priority": "high", "customer": {"external_id": "c-1", "name": "老客户", "tier": "vip"},
        "team": "老系统售后组", "assignee": "old_agent",
        "messages": [{"external_id": "m1", "author": "customer", "body": "快递丢了", "sent_at": "2026-10-08T09:00:00+08:00"}],
    }
    before = {(e.source, e.id) for e in audit.entries(audit.Filters())}
    response = api.post("/api/v1/imports/tickets", json.dumps(line, ensure_ascii=False), content_type="application/x-ndjson")
    assert response.status_code == 200 and response.json()["created"] == 1, response.json()

    ticket = Ticket.objects.get(external_id="old-1")
    row = ticket.history.get()
    assert (row.history_user_id, row.history_api_key_id, row.history_change_reason) == (api_key.user_id, api_key.pk, "import")
    made = [e for e in audit.entries(audit.Filters()) if (e.source, e.id) not in before]
    assert {"tickets.ticket", "helpdesk.team"} <= {e.record_type for e in made}
    assert {(e.user_id, e.api_key_id) for e in made} == {(api_key.user_id, api_key.pk)}


# --- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["alice", "lena", "iris", "tom", "olga"])
def test_only_administrators_see_the_trail(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(getattr(user, "user", user))
    assert client.get(audit_url()).status_code == 403
    assert client.get(reverse("admin:audit-export-csv")).status_code == 403
    assert "audit_url" not in (client.get(reverse("admin:index")).context or {})


def test_an_administrator_sees_the_trail_and_the_link_to_it(client, ada, support_team):
    client.force_login(ada)
    assert client.get(audit_url()).status_code == 200
    index = client.get(reverse("admin:index"))
    assert index.context["audit_url"] == audit_url() and audit_url() in index.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get(audit_url()).status_code == 302


@pytest.fixture
def day_of_changes(ada, alice, integration):
    """Around local midnight of 1-2 November 2026: ada's team made and renamed the evening
    before, the key's ticket change after midnight, then the team deleted and a user's groups
    changed in the admin on the 3rd."""
    api_key, plain = integration
    with time_machine.travel(datetime(2026, 11, 1, 23, 30, tzinfo=SHANGHAI), tick=False):
        team = Team(name="Night shift")
        team._history_user = ada
        team.save()
        ticket = TicketFactory()
    with time_machine.travel(datetime(2026, 11, 2, 0, 30, tzinfo=SHANGHAI), tick=False):
        assert key_client(plain).patch(f"/api/v1/tickets/{ticket.reference}/", {"priority": "high"}, format="json").status_code == 200
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=SHANGHAI), tick=False):
        team_id = team.pk
        team._history_user = ada
        team.delete()
        LogEntry.objects.create(
            user=ada, content_type=ContentType.objects.get_for_model(User), object_id=str(alice.user.pk),
            object_repr="alice", action_flag=CHANGE, change_message=json.dumps([{"changed": {"fields": ["Groups"]}}]),
        )
    return {"team_id": team_id, "ticket": ticket, "api_key": api_key}


def test_each_filter_narrows_the_trail(client, ada, day_of_changes):
    client.force_login(ada)
    team_id, ticket, api_key = day_of_changes["team_id"], day_of_changes["ticket"], day_of_changes["api_key"]

    def kinds(**params):
        return sorted((e.record_type, e.action) for e in shown(client, **params))

    assert kinds(user="ada") == [("auth.user", "changed"), ("helpdesk.team", "created"), ("helpdesk.team", "deleted")]
    assert kinds(api_key=api_key.prefix) == [("tickets.ticket", "changed")]
    assert kinds(type="helpdesk.team", user="ada") == [("helpdesk.team", "created"), ("helpdesk.team", "deleted")]
    assert kinds(type="auth.user") == [("auth.user", "changed")]
    assert kinds(action="deleted") == [("helpdesk.team", "deleted")]
    # Days are the site's: 00:30 on the 2nd in Shanghai is still the 1st in UTC.
    assert kinds(**{"from": "2026-11-02", "to": "2026-11-02"}) == [("tickets.ticket", "changed")]
    first = shown(client, to="2026-11-01")
    assert {e.at.astimezone(SHANGHAI).date() for e in first} == {date(2026, 11, 1)}
    assert {("helpdesk.team", "created"), ("tickets.ticket", "created")} <= {(e.record_type, e.action) for e in first}
    assert kinds(object=ticket.pk, type="tickets.ticket") == [("tickets.ticket", "changed"), ("tickets.ticket", "created")]
    assert {e.object_id for e in shown(client, object=team_id)} == {str(team_id)}


@pytest.mark.parametrize("params", [
    {"from": "2026-13-45"}, {"to": "yesterday"}, {"from": "0001-01-01"}, {"from": "2026-11-05", "to": "2026-11-01"},
    {"type": "nope.nothing"}, {"type": "auth.permission"}, {"action": "renamed"}, {"user": "ghost"},
    {"api_key": "ffffffff"}, {"object": "T0001"}, {"object": "-3"}, {"before": "garbage"},
    {"before": "2026-11-01T00:00:00+00:00|tickets.nothing|4"}, {"before": "2026-11-01T00:00:00|tickets.ticket|4"},
    {"object": "9" * 20}, {"before": f"2026-11-01T00:00:00+00:00|tickets.ticket|{'9' * 20}"},
    {"before": "9999-12-31T23:59:59-05:00|tickets.ticket|4"}, {"before": "2026-11-01T00:00:00+00:00|tickets.ticket"},
])
def test_bad_filter_input_is_an_error_on_the_page(client, ada, params):
    client.force_login(ada)
    page = client.get(audit_url(**params))
    assert page.status_code == 200
    assert page.context["form"].errors and page.context["entries"] is None
    assert 'class="errorlist' in page.content.decode()
    export = client.get(f"{reverse('admin:audit-export-csv')}?{page.wsgi_request.GET.urlencode()}")
    assert export.status_code == 302 and export["Location"].startswith(reverse("admin:audit"))


def test_cursor_pages_walk_every_change_once_even_at_the_same_instant(client, ada, monkeypatch):
    monkeypatch.setattr(admin_audit, "PAGE_SIZE", 3)
    with time_machine.travel(datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI), tick=False):
        TeamFactory.create_batch(4)  # four rows of one table at one instant
        CustomerFactory.create_batch(3)  # and three of another at the same instant
    TeamFactory.create_batch(2)
    LogEntry.objects.create(user=ada, content_type=ContentType.objects.get_for_model(Group), object_id="1",
                            object_repr="x", action_flag=DELETION)
    every = [(e.source, e.id) for e in audit.entries(audit.Filters())]
    assert len(every) == 10 and len(set(every)) == 10

    client.force_login(ada)
    seen, url, pages = [], audit_url(), 0
    while url:
        page = client.get(url)
        seen += [(e.source, e.id) for e in page.context["entries"]]
        url = page.context["older_url"] and reverse("admin:audit") + page.context["older_url"]
        pages += 1
    assert seen == every and pages == 4


def test_a_page_costs_the_same_few_queries_for_5_or_50_rows(client, ada, alice, iris, django_assert_max_num_queries):
    client.force_login(ada)
    version = Scorecard.objects.get(slug="standard").versions.get(number=1)

    def changes(count: int) -> None:
        users = [UserFactory() for _ in range(3)]
        for number in range(count):
            kind = number % 5
            if kind == 0:
                team = Team(name=f"team {count}-{number}")
                team._history_user = users[number % 3]
                team.save()
            elif kind == 1:
                CustomerFactory()
            elif kind == 2:
                Review.objects.create(ticket=TicketFactory(), agent=alice, inspector=iris, scorecard_version=version)
            elif kind == 3:
                create_api_key(name=f"key {count}-{number}", scope="read", user=users[number % 3])
            else:
                LogEntry.objects.create(user=users[number % 3], content_type=ContentType.objects.get_for_model(User),
                                        object_id=str(users[0].pk), object_repr="u", action_flag=CHANGE)

    client.get(audit_url())  # caches warmed: content types, translations
    changes(5)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(audit_url()).context["entries"]) < 50
    changes(60)
    with django_assert_max_num_queries(len(few.captured_queries)), CaptureQueriesContext(connection) as many:
        page = client.get(audit_url())
    entries = page.context["entries"]
    assert len(entries) == 50 and page.context["older_url"]
    assert len(many.captured_queries) == len(few.captured_queries) <= 32
    reviews = [e for e in entries if e.record_type == "qa.review"]
    assert reviews and all(e.object.startswith("T0") and "·" in e.object for e in reviews)  # named as __str__ names them


def test_a_name_that_would_cost_a_query_per_row_falls_back_to_type_and_id(client, ada, alice, iris, monkeypatch):
    monkeypatch.setitem(audit.NAMED_THROUGH, "qa.review", ())
    version = Scorecard.objects.get(slug="standard").versions.get(number=1)
    review = Review.objects.create(ticket=TicketFactory(), agent=alice, inspector=iris, scorecard_version=version)
    executed = []

    def count(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        executed.append(sql)  # reached the database
        return result

    with connection.execute_wrapper(count), translation.override("en"):
        entries, _older = audit.page(audit.Filters(record_type="qa.review"))
    assert len(executed) == 1  # the review's history; no users, no keys, no per-row reads
    assert [e.object for e in entries] == [f"QA review #{review.pk}"]


def test_the_csv_export_streams_the_filtered_trail_and_says_when_it_stops(client, ada, monkeypatch):
    client.force_login(ada)
    team = Team(name="=HYPERLINK(\"http://evil\")")
    team._history_user = ada
    team.save()
    CustomerFactory()
    with translation.override("en"):
        response = client.get(f"{reverse('admin:audit-export-csv')}?type=helpdesk.team", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit_')
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[:3] == ["Time", "User", "API key"]
    assert len(rows) == 1
    assert rows[0][1] == "ada" and rows[0][4] == "team" and rows[0][5] == str(team.pk)
    assert rows[0][6].startswith("'=")  # a spreadsheet does not run it

    monkeypatch.setattr(admin_audit, "EXPORT_LIMIT", 2)
    TeamFactory.create_batch(2)
    with translation.override("en"):
        response = client.get(reverse("admin:audit-export-csv"), HTTP_ACCEPT_LANGUAGE="en")
    _header, *rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 3 and rows[-1][0].startswith("Only the newest 2 changes")


# --- coverage --------------------------------------------------------------------------------


def test_every_model_with_history_is_a_source_of_the_trail():
    """A model newly given history must show on the page: found here independently of audit.py."""
    tables = {source.table for source in audit.sources()}
    audited = {model for model in registered_models.values() if not model._meta.auto_created}
    assert audited == {source.model for source in audit.sources() if not source.is_log}
    historical = {
        model for model in apps.get_models()
        if any(field.name == "history_date" for field in model._meta.fields)
    }
    assert historical == tables - {LogEntry}
    assert all(any(f.name == "history_api_key" for f in table._meta.fields) for table in historical)


def test_the_admins_log_is_kept_only_for_models_without_history(client, ada, support_team):
    client.force_login(ada)
    LogEntry.objects.create(user=ada, content_type=ContentType.objects.get_for_model(Team), object_id=str(support_team.pk),
                            object_repr="Support", action_flag=CHANGE)
    LogEntry.objects.create(user=ada, content_type=ContentType.objects.get_for_model(Customer), object_id="1",
                            object_repr="x", action_flag=DELETION)
    assert shown(client, user="ada") == []


def test_the_agent_inline_on_a_users_page_shows_both_changes(client, ada, support_team):
    user = UserFactory(username="newbie")
    client.force_login(ada)
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = submitted(client.get(url)) | {"agent-0-display_name": "Newbie", "agent-0-teams": [support_team.pk]}
    assert client.post(url, data).status_code == 302
    assert user.agent.display_name == "Newbie"
    assert {(e.record_type, e.action) for e in shown(client, user="ada")} == {("auth.user", "changed"), ("helpdesk.agent", "created")}
