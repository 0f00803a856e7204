"""Backups: what `manage.py backup` writes, `manage.py restore` brings back, table by table.

The suite runs on SQLite and on PostgreSQL (DATABASE_URL); on PostgreSQL a backup is restored
into a database of its own, created by the restore and dropped by the test.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import dj_database_url
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.utils import ConnectionHandler
from django.utils import timezone, translation

from helpdesk import backup_checksums, backups
from helpdesk.models import Channel, Customer
from helpdesk.tasks_backup import backup_database_task
from tickets import services
from tickets.models import Message, Ticket

from ..factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
POSTGRES = connection.vendor == "postgresql"
S = Ticket.Status


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture(autouse=True)
def _postgres_tools() -> None:
    if POSTGRES and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not on PATH")


@pytest.fixture
def fresh_database_url(tmp_path) -> Iterator[str]:
    """A database that does not exist yet: the restore creates it."""
    if not POSTGRES:
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    db = connection.settings_dict
    name = f"{db['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    yield f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")


@pytest.fixture
def conversations(alice) -> list[Ticket]:
    """Tickets with customers, messages both ways, status changes and so history rows; written on
    a Tuesday morning, so no automatic notice joins them and each holds the three messages written."""
    tickets = []
    with time_machine.travel(datetime(2026, 11, 24, 10, tzinfo=ZoneInfo("Asia/Shanghai"))):
        for number in range(5):
            ticket = services.open_ticket(
                customer=CustomerFactory(),
                subject=f"订单 {number} 未到 'quoted' \"double\"",
                channel=Channel.WEB_CHAT,
                body=f"我的订单 {number} 还没到\n第二行",
                team=alice.teams.first(),
            )
            services.post_message(ticket=ticket, author_kind=Message.AuthorKind.AGENT, agent=alice, body="正在查")
            services.post_message(
                ticket=ticket, author_kind=Message.AuthorKind.AGENT, agent=alice, body="备注", internal=True
            )
            if number % 2:
                services.change_status(ticket=ticket, status=S.SOLVED, actor=alice.user)
            tickets.append(ticket)
    return tickets


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def only_backup(directory: Path) -> Path:
    (path,) = [p for p in directory.iterdir() if backups.NAME_PATTERN.match(p.name)]
    return path


def query(database_url: str, sql: str) -> list[tuple]:
    """Rows read straight from another database, past the code under test."""
    handler = ConnectionHandler({DEFAULT_DB_ALIAS: dj_database_url.parse(database_url)})
    other = handler[DEFAULT_DB_ALIAS]
    try:
        with other.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        other.close()


def test_a_backup_restored_into_a_fresh_database_holds_the_same_rows_table_by_table(
    conversations, backup_dir, fresh_database_url
):
    out = run("backup")
    path = only_backup(backup_dir)
    assert path.suffix == (".dump" if POSTGRES else ".sqlite3")
    assert str(path) in out
    manifest = json.loads(path.with_name(path.name + ".json").read_text())
    assert manifest["tables"]["tickets_ticket"]["rows"] == 5
    assert manifest["tables"]["tickets_message"]["rows"] == Message.objects.count() == 15
    assert manifest["tables"]["helpdesk_customer"]["rows"] == Customer.objects.count()
    assert manifest["tables"]["tickets_historicalticket"]["rows"] >= 5

    out = run("restore", str(path), "--database-url", fresh_database_url)
    assert "all matching the manifest" in out

    original = backups.database_checksums()
    restored = backups.database_checksums(database_url=fresh_database_url)
    assert original == manifest["tables"]
    assert restored == original  # every table: same row count, same checksum
    assert len(restored) > 50
    # And read past the checksums: the conversations themselves came back.
    assert query(fresh_database_url, "SELECT id, subject FROM tickets_ticket ORDER BY id") == list(
        Ticket.objects.order_by("id").values_list("id", "subject")
    )
    assert query(fresh_database_url, "SELECT body FROM tickets_message ORDER BY id") == list(
        Message.objects.order_by("id").values_list("body")
    )


def test_the_checksums_notice_one_changed_row(conversations):
    before = backups.database_checksums()
    message = Message.objects.order_by("id").last()
    Message.objects.filter(pk=message.pk).update(body=message.body + ".")
    after = backups.database_checksums()
    assert backup_checksums.compare(before, after) == [
        "tickets_message: same row count, different content (checksum)"
    ]


def test_a_restore_fails_loudly_when_the_rows_differ_from_the_manifest(conversations, backup_dir, fresh_database_url):
    run("backup")
    path = only_backup(backup_dir)
    manifest_path = path.with_name(path.name + ".json")
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["tickets_message"]["checksum"] = "0" * 32
    manifest["tables"]["tickets_ticket"]["rows"] = 6
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(CommandError) as refused:
        run("restore", str(path), "--database-url", fresh_database_url)
    assert "tickets_message: same row count, different content" in str(refused.value)
    assert "tickets_ticket: 5 rows, the backup had 6" in str(refused.value)


def test_a_tampered_backup_is_refused_before_anything_is_restored(conversations, backup_dir, fresh_database_url):
    run("backup")
    path = only_backup(backup_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(CommandError, match="sha256"):
        run("restore", str(path), "--database-url", fresh_database_url)
    name = dj_database_url.parse(fresh_database_url)["NAME"]
    if POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            assert cursor.fetchone() is None  # not even created
    else:
        assert not Path(name).exists()


def test_a_restore_into_a_database_with_tables_needs_yes(conversations, backup_dir):
    run("backup")
    path = only_backup(backup_dir)
    later = services.open_ticket(customer=CustomerFactory(), subject="之后", channel=Channel.EMAIL, body="新的")
    Message.objects.filter(ticket=conversations[0]).delete()

    with pytest.raises(CommandError, match="--yes"):
        run("restore", str(path))
    assert Ticket.objects.filter(pk=later.pk).exists()  # untouched

    out = run("restore", str(path), "--yes")
    assert "match" in out
    assert not Ticket.objects.filter(pk=later.pk).exists()
    assert Message.objects.filter(ticket=conversations[0]).count() == 3
    assert backups.database_checksums() == backups.read_manifest(path)["tables"]


def test_a_restore_names_the_tables_the_backup_does_not_have(backup_dir):
    """pg_restore --clean drops and recreates the tables of the dump and leaves others; the
    SQLite restore replaces the whole database."""
    run("backup")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE notes_kept_by_hand (id integer PRIMARY KEY)")
    err = StringIO()
    try:
        call_command("restore", str(only_backup(backup_dir)), "--yes", stdout=StringIO(), stderr=err)
        still_there = "notes_kept_by_hand" in connection.introspection.table_names()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS notes_kept_by_hand")
    if POSTGRES:
        assert still_there
        assert "left as they were: notes_kept_by_hand" in err.getvalue()
    else:
        assert not still_there
        assert err.getvalue() == ""


def test_a_restore_explains_a_missing_file_a_stranger_and_a_missing_manifest(tmp_path, backup_dir):
    with pytest.raises(CommandError, match="No backup file"):
        run("restore", str(tmp_path / "nothing.dump"))
    stranger = tmp_path / "notes.dump"
    stranger.write_text("not a backup")
    with pytest.raises(CommandError, match="not a backup"):
        run("restore", str(stranger))
    run("backup")
    copied = tmp_path / "copied"
    shutil.copy(only_backup(backup_dir), copied)
    with pytest.raises(CommandError, match="No manifest"):
        run("restore", str(copied))


def test_a_restore_refuses_a_backup_of_the_other_engine(tmp_path, fresh_database_url):
    if POSTGRES:
        other = tmp_path / "helpdesk-20200101-000000.sqlite3"
        made = sqlite3.connect(other)
        made.execute("CREATE TABLE t (id integer primary key)")
        made.commit()
        made.close()
        engine, name = "sqlite", "SQLite"
    else:
        other = tmp_path / "helpdesk-20200101-000000.dump"
        other.write_bytes(b"PGDMP" + bytes(100))
        engine, name = "postgresql", "PostgreSQL"
    manifest = {"format": 1, "engine": engine, "sha256": backups._sha256(other), "tables": {}}
    other.with_name(other.name + ".json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match=f"is a backup of {name}"):
        run("restore", str(other), "--database-url", fresh_database_url)


@pytest.mark.skipif(not POSTGRES, reason="pg_dump and pg_restore are PostgreSQL's")
def test_backup_and_restore_say_when_the_postgresql_tools_are_missing(backup_dir, monkeypatch, tmp_path):
    run("backup")
    path = only_backup(backup_dir)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError, match="pg_dump was not found on PATH"):
        run("backup", "--output", str(tmp_path / "second.dump"))
    with pytest.raises(CommandError, match="pg_restore was not found on PATH"):
        run("restore", str(path), "--yes")


def test_a_restore_verifies_with_the_batch_size_the_backup_was_made_with(
    conversations, backup_dir, fresh_database_url, monkeypatch
):
    monkeypatch.setattr(backup_checksums, "BATCH_ROWS", 2)  # many batches per table
    run("backup")
    monkeypatch.undo()
    path = only_backup(backup_dir)
    assert backups.read_manifest(path)["batch_rows"] == (2 if POSTGRES else None)
    assert "match" in run("restore", str(path), "--database-url", fresh_database_url)


def test_a_backup_goes_where_output_says_and_never_overwrites(tmp_path, backup_dir):
    target = tmp_path / "elsewhere" / "before-upgrade.backup"
    out = run("backup", "--output", str(target))
    assert str(target) in out
    assert target.is_file() and target.with_name(target.name + ".json").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["before-upgrade.backup", "before-upgrade.backup.json"]
    size = target.stat().st_size
    with pytest.raises(CommandError, match="exists already"):
        run("backup", "--output", str(target))
    assert target.stat().st_size == size


def make_old_backups(directory: Path, days: list[int]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for day in days:
        path = directory / f"helpdesk-202001{day:02d}-033000.{'dump' if day % 2 else 'sqlite3'}"
        path.write_bytes(b"old")
        path.with_name(path.name + ".json").write_text("{}")
        made.append(path)
    return made


def test_the_daily_task_keeps_the_newest_backups_and_deletes_only_its_own(settings, backup_dir, caplog):
    settings.BACKUP_KEEP = 3
    old = make_old_backups(backup_dir, [1, 2, 3, 4, 5])
    strangers = [
        "notes.txt", "helpdesk-manual.dump", "my-helpdesk-20190101-000000.dump", "helpdesk-20190101-000000.dump.bak"
    ]
    for name in strangers:
        (backup_dir / name).write_text("keep me")

    with caplog.at_level(logging.INFO, logger="helpdesk.backups"):
        new = Path(backup_database_task.apply().get())

    kept = sorted(p.name for p in backup_dir.iterdir() if backups.NAME_PATTERN.match(p.name))
    assert kept == sorted([old[3].name, old[4].name, new.name])
    for path in old[:3]:
        assert not path.with_name(path.name + ".json").exists()  # the manifest went with it
    assert new.with_name(new.name + ".json").is_file()
    assert all((backup_dir / name).read_text() == "keep me" for name in strangers)
    assert "removed 3 older" in caplog.text and old[0].name in caplog.text

    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        backup_database_task.apply().get()  # a second run keeps three still
    assert len([p for p in backup_dir.iterdir() if backups.NAME_PATTERN.match(p.name)]) == 3


def test_a_failed_daily_backup_raises_and_deletes_nothing(settings, backup_dir, monkeypatch):
    settings.BACKUP_KEEP = 1
    old = make_old_backups(backup_dir, [1, 2, 3])

    def disk_full(path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backups, "_sha256", disk_full)
    result = backup_database_task.apply()
    assert result.failed()
    with pytest.raises(backups.BackupError, match="No space left"):
        result.get()
    assert sorted(backup_dir.iterdir()) == sorted([*old, *(p.with_name(p.name + ".json") for p in old)])


def test_the_daily_task_refuses_to_keep_no_backup(settings, backup_dir):
    settings.BACKUP_KEEP = 0
    with pytest.raises(backups.BackupError, match="BACKUP_KEEP"):
        backup_database_task.apply().get()


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links (SMB, exFAT)"])
def test_a_backup_file_is_placed_whole_and_never_over_another(tmp_path, monkeypatch, links):
    if not links:
        def no_links(*args, **kwargs):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(backups.os, "link", no_links)
    target = tmp_path / "helpdesk.dump"
    with backups._atomic_file(target) as partial:
        partial.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(backups.BackupError), backups._atomic_file(target) as partial:
        partial.write_bytes(b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["helpdesk.dump"]  # no partial left behind
