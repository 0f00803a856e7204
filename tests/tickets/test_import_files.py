"""History files as people bring them: CSV from spreadsheets (UTF-8, BOM, GB18030), BOMs,
undecodable bytes and absurd nesting, each reported by line and field with nothing written."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.models import Customer, Message, Ticket

from ..api.test_imports import line

# The assertions read the English messages; the default language is zh-hans.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

HEADER = [
    "external_id", "subject", "channel", "category", "priority", "customer_external_id", "customer_name",
    "customer_phone", "team", "assignee", "author", "agent", "body", "sent_at", "internal", "status", "status_at",
    "csat_stars", "csat_at",
]


def rows_of(*tickets):
    """CSV rows: a ticket's cells on its first row, messages and events on the rows after."""
    out = [HEADER]
    for external_id, name, overrides in tickets:
        first = {
            "external_id": external_id, "subject": f"{name}的包裹丢了", "channel": "web_chat", "category": "after_sales",
            "priority": "high", "customer_external_id": f"c-{external_id}", "customer_name": name,
            "customer_phone": "13500000000", "team": "售后组", "assignee": "old_agent",
            "author": "customer", "body": "快递丢了，\n请帮忙", "sent_at": "2026-10-08T09:00:00+08:00",
            "csat_stars": "5", "csat_at": "2026-10-09T12:00:00+08:00",
        }
        later = [
            {"external_id": external_id, "author": "agent", "agent": "old_agent", "body": "帮您查",
             "sent_at": "2026-10-08T09:05:00+08:00"},
            {"external_id": external_id, "author": "agent", "agent": "old_agent", "body": "备注", "internal": "true",
             "sent_at": "2026-10-08T09:06:00+08:00"},
            {"external_id": external_id, "status": "solved", "status_at": "2026-10-08T10:00:00+08:00"},
        ]
        for row in [first | overrides.get(0, {}), *(r | overrides.get(i, {}) for i, r in enumerate(later, 1))]:
            out.append([row.get(column, "") for column in HEADER])
    return out


def csv_file(tmp_path, rows, encoding="utf-8", name="history.csv"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_a_gb18030_csv_from_chinese_excel_imports_with_its_chinese_names(tmp_path, capsys):
    path = csv_file(tmp_path, rows_of(("old-1", "张三", {}), ("old-2", "李四", {})), encoding="gb18030")
    call_command("import_tickets", str(path))
    assert "2 created, 0 updated, 0 failed" in capsys.readouterr().out
    ticket = Ticket.objects.get(external_id="old-1")
    assert ticket.customer.name == "张三" and ticket.subject == "张三的包裹丢了" and ticket.team.name == "售后组"
    assert ticket.status == "solved" and ticket.csat.stars == 5
    assert list(ticket.messages.order_by("sent_at").values_list("body", "is_internal")) == [
        ("快递丢了，\n请帮忙", False), ("帮您查", False), ("备注", True),
    ]
    assert Customer.objects.get(external_id="c-old-2").name == "李四"


def test_the_encoding_can_be_named(tmp_path):
    path = csv_file(tmp_path, rows_of(("old-1", "张三", {})), encoding="gb18030")
    call_command("import_tickets", str(path), "--encoding", "GBK")
    assert Ticket.objects.get().customer.name == "张三"
    with pytest.raises(CommandError, match="unknown encoding"):
        call_command("import_tickets", str(path), "--encoding", "latin-9")


def test_a_csv_with_a_utf8_bom_imports(tmp_path):
    path = csv_file(tmp_path, rows_of(("old-1", "张三", {})), encoding="utf-8-sig")
    call_command("import_tickets", str(path))
    assert Ticket.objects.get().customer.name == "张三"


def test_a_json_lines_file_with_a_utf8_bom_imports_its_first_line(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (line("bom-1") + "\n" + line("bom-2") + "\n").encode())
    call_command("import_tickets", str(path))
    assert set(Ticket.objects.values_list("external_id", flat=True)) == {"bom-1", "bom-2"}


def test_bad_csv_rows_are_reported_by_line_and_column_and_nothing_is_written(tmp_path, capsys):
    rows = rows_of(
        ("old-1", "张三", {}),  # lines 2-6 (the first message's body spans two lines)
        ("old-2", "李四", {0: {"channel": "fax"}, 2: {"sent_at": "yesterday"}}),  # lines 7-11
        ("old-3", "王五", {3: {"status": "lost"}}),  # lines 12-16
    )
    rows.append(rows[1])  # old-1 again, apart from its other rows: line 17
    with pytest.raises(CommandError, match="4 line.*nothing was imported"):
        call_command("import_tickets", str(csv_file(tmp_path, rows)))
    err = capsys.readouterr().err
    assert "line 7: channel: " in err
    assert "line 10: sent_at: " in err  # the third message of old-2
    assert "line 16: status: " in err  # old-3's event row
    assert "line 17: external_id: the rows of ticket “old-1” must come together (it began on line 2)" in err
    assert not Ticket.objects.exists() and not Message.objects.exists() and not Customer.objects.exists()


def test_undecodable_bytes_are_reported_with_their_line(tmp_path, capsys):
    path = csv_file(tmp_path, rows_of(("old-1", "张三", {}), ("old-2", "李四", {})))
    raw = path.read_bytes().split(b"\n")
    raw[8] = raw[8].replace("帮您查".encode(), b"\xff\xfe")
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_tickets", str(path), "--encoding", "utf-8")
    err = capsys.readouterr().err
    assert "line 9: bytes ff (byte 32 of the line) are not valid UTF-8 text" in err
    assert not Ticket.objects.exists()


def test_undecodable_bytes_fail_only_their_ticket_with_partial(tmp_path, capsys):
    path = csv_file(tmp_path, rows_of(("old-1", "张三", {}), ("old-2", "李四", {})))
    raw = path.read_bytes().split(b"\n")
    raw[8] = raw[8].replace("帮您查".encode(), b"\xff\xfe")  # a row of old-2
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(CommandError, match="1 line"):
        call_command("import_tickets", str(path), "--encoding", "utf-8", "--partial")
    err = capsys.readouterr().err
    assert "line 9: bytes ff (byte 32 of the line) are not valid UTF-8 text" in err
    assert list(Ticket.objects.values_list("external_id", flat=True)) == ["old-1"]


def test_a_csv_header_with_an_unknown_column_is_refused_naming_it(tmp_path, capsys):
    rows = rows_of(("old-1", "张三", {}))
    rows[0] = [*rows[0][:-1], "满意度"]
    with pytest.raises(CommandError):
        call_command("import_tickets", str(csv_file(tmp_path, rows)))
    assert "line 1: 满意度: the header needs an external_id column" in capsys.readouterr().err


def test_a_json_line_nested_absurdly_deep_is_reported_not_a_crash(tmp_path, capsys):
    path = tmp_path / "history.jsonl"
    path.write_text(line("ok-1") + "\n" + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match="1 line"):
        call_command("import_tickets", str(path))
    assert "line 2: nests deeper than 64 levels" in capsys.readouterr().err
    assert not Ticket.objects.exists()


def test_standard_input_is_read_once_and_imported(tmp_path, monkeypatch):
    body = (line("stdin-1") + "\n").encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))
    call_command("import_tickets", "-")
    assert Ticket.objects.filter(external_id="stdin-1").exists()


def test_the_api_takes_csv_in_gb18030(api):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows_of(("api-1", "张三", {})))
    response = api.post(
        "/api/v1/imports/tickets", buffer.getvalue().encode("gb18030"), content_type="text/csv; charset=gb18030"
    )
    assert response.status_code == 200, response.json()
    assert Ticket.objects.get().customer.name == "张三"


@settings(max_examples=60)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_text_saved_as_utf8_is_sniffed_as_utf8(text):
    from helpdesk.textfiles import sniff_encoding

    raw = text.encode("utf-8")
    # A sample cut anywhere, even inside a character, is still recognised.
    assert all(sniff_encoding(raw[:cut]) == "utf-8" for cut in range(len(raw) + 1))


@settings(max_examples=60)
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=8), max_size=6))
def test_an_undecodable_byte_is_reported_on_its_line(lines):
    from helpdesk.textfiles import DecodeProblem, decode_text

    raw = "\n".join(lines).encode("utf-8")
    with pytest.raises(DecodeProblem) as problem:
        decode_text(raw + b"\xff tail\nnext line", "utf-8")
    assert problem.value.line == max(len(lines), 1)
