"""Importing history: command and API, the same lines."""

from __future__ import annotations

import json
from datetime import datetime
from unittest.mock import ANY

import pytest
from django.core.management import CommandError, call_command

from helpdesk.models import Agent, Customer, Notification, Team
from tickets.models import Csat, Escalation, Message, SlaClock, Ticket

# The assertions read the English messages; the default language is zh-hans.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def line(external_id="old-1001", **overrides):
    data = {
        "external_id": external_id,
        "subject": "包裹丢了",
        "channel": "web_chat",
        "category": "after_sales",
        "priority": "high",
        "customer": {"external_id": "c-1", "name": "老客户", "phone": "13500000000", "tier": "vip"},
        "team": "老系统售后组",
        "assignee": "old_agent",
        "messages": [
            {"external_id": "m1", "author": "customer", "body": "快递丢了", "sent_at": "2026-10-08T09:00:00+08:00"},
            {"external_id": "m2", "author": "agent", "agent": "old_agent", "body": "帮您查", "sent_at": "2026-10-08T09:05:00+08:00"},
            {"author": "agent", "agent": "old_agent", "body": "备注", "internal": True, "sent_at": "2026-10-08T09:06:00+08:00"},
        ],
        "events": [
            {"status": "solved", "at": "2026-10-08T10:00:00+08:00"},
            {"status": "open", "at": "2026-10-09T08:00:00+08:00"},
            {"status": "solved", "at": "2026-10-09T09:00:00+08:00"},
            {"status": "closed", "at": "2026-10-13T09:00:00+08:00"},
        ],
        "csat": {"stars": 4, "comment": "还行", "at": "2026-10-09T12:00:00+08:00"},
    }
    return json.dumps(data | overrides, ensure_ascii=False)


def write(tmp_path, *lines):
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def at(text):
    return datetime.fromisoformat(text)


def test_a_ticket_imports_whole_with_the_histories_times(tmp_path, capsys):
    call_command("import_tickets", str(write(tmp_path, line())))
    assert "1 created, 0 updated, 0 failed" in capsys.readouterr().out
    ticket = Ticket.objects.get(external_id="old-1001")
    assert ticket.status == "closed" and ticket.priority == "high" and ticket.category.code == "after_sales"
    assert ticket.created_at == at("2026-10-08T09:00:00+08:00")
    assert ticket.first_response_at == at("2026-10-08T09:05:00+08:00")
    assert ticket.solved_at == at("2026-10-09T09:00:00+08:00")
    assert ticket.closed_at == at("2026-10-13T09:00:00+08:00")
    assert ticket.team.name == "老系统售后组" and ticket.assignee.user.username == "old_agent"
    assert not ticket.assignee.user.has_usable_password()
    assert ticket.messages.count() == 3 and ticket.messages.filter(is_internal=True).count() == 1
    assert ticket.customer.tier == "vip"
    assert Csat.objects.get(ticket=ticket).stars == 4


def test_reimporting_updates_and_never_duplicates(tmp_path):
    call_command("import_tickets", str(write(tmp_path, line(), line("old-1002"))))
    call_command("import_tickets", str(write(tmp_path, line(priority="urgent"), line("old-1002"))))
    assert Ticket.objects.count() == 2 and Message.objects.count() == 6
    assert Customer.objects.count() == 1 and Team.objects.filter(name="老系统售后组").count() == 1
    assert Agent.objects.filter(user__username="old_agent").count() == 1
    assert Ticket.objects.get(external_id="old-1001").priority == "urgent"
    assert Csat.objects.count() == 2


def bad_file(tmp_path):
    return write(
        tmp_path,
        line("good-1"),
        "{broken json",
        line("bad-2", channel="fax"),
        "",
        line("bad-3", messages=[]),
        line("bad-4", category="nope"),
        line("good-2"),
        json.dumps([1, 2]),
    )


BAD_LINES = [(2, "not JSON"), (3, "channel: "), (5, "messages: "), (6, "category: unknown code"), (8, "not a JSON object")]


def test_a_file_with_bad_lines_imports_nothing_and_names_each_line_and_field(tmp_path, capsys):
    with pytest.raises(CommandError, match="5 line.*nothing was imported"):
        call_command("import_tickets", str(bad_file(tmp_path)))
    captured = capsys.readouterr()
    assert "0 created, 0 updated, 5 failed" in captured.out
    for number, words in BAD_LINES:
        assert f"line {number}: {words}" in captured.err
    assert not Ticket.objects.exists() and not Customer.objects.exists() and not Team.objects.exists()


def test_partial_imports_the_good_lines_and_reports_the_bad_ones(tmp_path, capsys):
    with pytest.raises(CommandError, match="5 line.*the other lines were imported"):
        call_command("import_tickets", str(bad_file(tmp_path)), "--partial")
    captured = capsys.readouterr()
    assert "2 created, 0 updated, 5 failed" in captured.out
    for number, words in BAD_LINES:
        assert f"line {number}: {words}" in captured.err
    assert set(Ticket.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_tickets", str(tmp_path / "nope.jsonl"))


def test_imports_send_no_webhooks(tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("import_tickets", str(write(tmp_path, line())))
    assert callbacks == []


def test_the_api_takes_the_same_lines(api):
    body = "\n".join([line("api-1"), line("api-2"), line("api-3")])
    response = api.post("/api/v1/imports/tickets", body, content_type="application/x-ndjson")
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["failed"]) == (3, 0)


def test_the_api_refuses_a_file_with_a_bad_line_naming_it_and_writes_nothing(api):
    body = "\n".join([line("api-1"), line("api-2", subject=""), line("api-3")])
    response = api.post("/api/v1/imports/tickets", body, content_type="application/x-ndjson")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_lines" and list(error["fields"]) == ["lines[2].subject"]
    assert response.json()["report"]["errors"][0] == {"line": 2, "field": "subject", "error": ANY}
    assert not Ticket.objects.exists()


def test_the_api_imports_the_good_lines_when_asked(api):
    body = "\n".join([line("api-1"), line("api-2", subject=""), line("api-3")])
    response = api.post("/api/v1/imports/tickets?partial=true", body, content_type="application/x-ndjson")
    assert response.status_code == 200
    report = response.json()
    assert (report["created"], report["updated"], report["failed"]) == (2, 0, 1)
    assert report["errors"][0]["line"] == 2 and report["errors"][0]["error"].startswith("subject:")
    assert Ticket.objects.count() == 2


def test_the_import_api_needs_write_rights(client, iris):
    client.force_login(iris)
    assert client.post("/api/v1/imports/tickets", line(), content_type="application/x-ndjson").status_code == 403


def test_reimporting_the_same_history_writes_no_audit_rows(tmp_path):
    path = write(tmp_path, line())
    call_command("import_tickets", str(path))
    ticket = Ticket.objects.get()
    rows = ticket.history.count()
    call_command("import_tickets", str(path))
    assert ticket.history.count() == rows
    call_command("import_tickets", str(write(tmp_path, line(subject="包裹找到了"))))
    assert ticket.history.count() == rows + 1


def test_an_import_never_turns_an_existing_user_into_an_agent(tmp_path, ada, capsys):
    with pytest.raises(CommandError):
        call_command("import_tickets", str(write(tmp_path, line(assignee="ada", messages=[
            {"author": "customer", "body": "x", "sent_at": "2026-10-08T09:00:00+08:00"}]))))
    assert "exists and is not an agent" in capsys.readouterr().err
    ada.refresh_from_db()
    assert not Agent.objects.filter(user=ada).exists() and not ada.groups.filter(name="Agent").exists()


def test_imported_history_gets_its_clocks_met_or_breached_and_fires_nothing(tmp_path):
    # web chat: first response 15 s (answered after 5 min: breached); high priority resolution is one
    # cn-workweek business day from 09:00 on 8 October (solved on 9 October at 09:00, in time).
    call_command("import_tickets", str(write(tmp_path, line())))
    ticket = Ticket.objects.get(external_id="old-1001")
    first = ticket.sla_clocks.get(metric="first_response")
    assert first.fulfilled_at == at("2026-10-08T09:05:00+08:00")
    assert first.breached_at == at("2026-10-08T09:00:15+08:00")
    resolution = ticket.sla_clocks.get(metric="resolution")
    assert resolution.due_at == at("2026-10-08T18:00:00+08:00")
    assert resolution.fulfilled_at == at("2026-10-09T09:00:00+08:00") and resolution.breached_at is not None
    assert not SlaClock.objects.filter(next_check_at__isnull=False).exists()
    assert not Escalation.objects.exists() and not Notification.objects.exists()
    call_command("import_tickets", str(write(tmp_path, line(priority="low"))))  # re-import recomputes
    assert ticket.sla_clocks.count() == 2
    assert ticket.sla_clocks.get(metric="resolution").breached_at is None  # five days: met


def test_an_imported_ticket_waiting_on_the_customer_has_its_clock_paused(tmp_path):
    events = [{"status": "pending", "at": "2026-10-08T09:10:00+08:00"}]
    call_command("import_tickets", str(write(tmp_path, line(events=events, csat=None))))
    resolution = Ticket.objects.get(external_id="old-1001").sla_clocks.get(metric="resolution")
    assert resolution.paused_at is not None and resolution.next_check_at is None
