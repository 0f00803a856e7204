"""Backups of the database, and restores that prove themselves table by table.

A backup is one file (pg_dump's custom format on PostgreSQL, an SQLite database on SQLite) and
a JSON manifest next to it (`<file>.json`): the file's sha256 and, per table, the row count and
a checksum of its rows in primary-key order. A restore refuses a file whose sha256 differs from
its manifest, then recomputes the counts and checksums on the database it wrote: a backup is
only worth something once it has been restored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import Error as DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler
from django.utils import timezone
from django.utils.translation import gettext as _

from . import backup_checksums as checksums

logger = logging.getLogger(__name__)

POSTGRES, SQLITE = "postgresql", "sqlite"
ENGINES = {"django.db.backends.postgresql": POSTGRES, "django.db.backends.sqlite3": SQLITE}
EXTENSIONS = {POSTGRES: "dump", SQLITE: "sqlite3"}
DISPLAY_NAMES = {POSTGRES: "PostgreSQL", SQLITE: "SQLite"}
# What each kind of file starts with: a restore recognises its input by content, not by name.
MAGIC = {POSTGRES: b"PGDMP", SQLITE: b"SQLite format 3\x00"}
# Only files named like this are the daily task's to delete.
NAME_PATTERN = re.compile(r"^helpdesk-(?P<stamp>\d{8}-\d{6})\.(?:dump|sqlite3)$")
PARTIAL_PATTERN = re.compile(r"^\.helpdesk-\d{8}-\d{6}\.(?:dump|sqlite3)(?:\.json)?\.\d+(?:-\d+)?\.partial$")
MANIFEST_FORMAT = 1


class BackupError(Exception):
    """A backup or restore could not be made or verified; the message is for the operator."""


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest_path: Path
    size: int
    sha256: str
    tables: checksums.Checksums

    @property
    def rows(self) -> int:
        return sum(table["rows"] for table in self.tables.values())


@dataclass(frozen=True)
class Restored:
    target: str  # the database as people read it, never with its password
    tables: int
    rows: int
    untouched: list[str]  # tables of the target the backup does not have: left as they were


@dataclass(frozen=True)
class _Target:
    """A database to read or write: the configured one (alias) or one named by a URL."""

    settings: dict[str, Any]
    alias: str | None

    @property
    def engine(self) -> str:
        engine = ENGINES.get(self.settings["ENGINE"])
        if engine is None:
            raise BackupError(
                _("Backups support PostgreSQL and SQLite, not %(engine)s.") % {"engine": self.settings["ENGINE"]}
            )
        return engine

    def __str__(self) -> str:
        if self.engine == SQLITE:
            return str(self.settings["NAME"])
        host = self.settings.get("HOST") or "localhost"
        port = self.settings.get("PORT") or 5432
        return f"{self.settings['NAME']} @ {host}:{port}"


# --- backup ----------------------------------------------------------------------------


def create_backup(*, output: Path | None = None, alias: str = DEFAULT_DB_ALIAS) -> Backup:
    """Write a consistent backup of the database and its manifest, each atomically.

    Without `output` the file goes to BACKUP_DIR as helpdesk-YYYYmmdd-HHMMSS (UTC) with the
    engine's extension. An existing file is never overwritten. The checksums describe exactly
    the rows in the file: PostgreSQL computes them in the snapshot pg_dump reads, SQLite on the
    copy itself.
    """
    target = _Target(connections[alias].settings_dict, alias)
    engine = target.engine
    if output is None:
        stamp = timezone.now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        output = Path(settings.BACKUP_DIR) / f"helpdesk-{stamp}.{EXTENSIONS[engine]}"
    output = Path(output)
    manifest_path = _manifest_path(output)
    for path in (output, manifest_path):
        if path.exists():
            raise BackupError(_("%(path)s exists already; a backup never overwrites a file.") % {"path": path})
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(
            _("Cannot create the folder %(path)s: %(error)s") % {"path": output.parent, "error": error}
        ) from error

    try:
        with _atomic_file(output) as partial:
            if engine == POSTGRES:
                tables, server_version = _dump_postgres(target, partial)
                batch_rows = checksums.BATCH_ROWS
            else:
                tables, server_version = _copy_sqlite(target, partial), sqlite3.sqlite_version
                batch_rows = None
            size = partial.stat().st_size
            sha256 = _sha256(partial)
            manifest = {
                "format": MANIFEST_FORMAT,
                "engine": engine,
                "file": output.name,
                "size": size,
                "sha256": sha256,
                "created_at": timezone.now().astimezone(UTC).isoformat(),
                "database": Path(str(target.settings["NAME"])).name,
                "server_version": server_version,
                "batch_rows": batch_rows,
                "tables": tables,
            }
            # The manifest lands first: any backup file one can see has its manifest.
            with _atomic_file(manifest_path) as partial_manifest:
                partial_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as error:
        message = _("Cannot write the backup %(path)s: %(error)s") % {"path": output, "error": error}
        raise BackupError(message) from error
    return Backup(path=output, manifest_path=manifest_path, size=size, sha256=sha256, tables=tables)


def _dump_postgres(target: _Target, destination: Path) -> tuple[checksums.Checksums, str]:
    """pg_dump reads the snapshot our REPEATABLE READ transaction exported, and the checksums
    are computed in that same snapshot while it runs: rows written meanwhile are in neither."""
    pg_dump = _tool("pg_dump")
    args, env = _pg_connection_args(target.settings)
    try:
        with _postgres_snapshot(target) as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            command = [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={destination}", *args]
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                tables = checksums.postgres_checksums(cursor, batch_rows=checksums.BATCH_ROWS)
                _, stderr = process.communicate()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            server_version = _pg_version(cursor.db)
    except DatabaseError as error:
        raise BackupError(_("Cannot read the database %(db)s: %(error)s") % {"db": target, "error": error}) from error
    if process.returncode != 0:
        raise BackupError(
            _("pg_dump failed (exit status %(status)s): %(stderr)s")
            % {"status": process.returncode, "stderr": stderr.decode(errors="replace").strip()}
        )
    return tables, server_version


def _copy_sqlite(target: _Target, destination: Path) -> checksums.Checksums:
    """Copy with SQLite's backup API in one step (a consistent snapshot under a read lock that
    does not stop writers in WAL mode); a plain file copy of a live WAL database can miss the
    transactions still in its -wal file, or catch one half-written."""
    source = _sqlite_connection(target)
    copy_ = sqlite3.connect(destination)
    try:
        source.backup(copy_)
        copy_.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        copy_.commit()
        return checksums.sqlite_checksums(copy_)
    except sqlite3.Error as error:
        raise BackupError(_("Cannot copy the database %(db)s: %(error)s") % {"db": target, "error": error}) from error
    finally:
        copy_.close()


# --- restore ---------------------------------------------------------------------------


def restore_backup(
    *, path: Path, database_url: str | None = None, replace: bool = False, alias: str = DEFAULT_DB_ALIAS
) -> Restored:
    """Restore a backup into the configured database, or the one `database_url` names, then
    check every table's row count and checksum against the manifest.

    Refuses, before touching anything: a missing file, a file that is no backup of ours, one
    whose sha256 differs from its manifest, a backup of the other engine, and (unless
    `replace`) a target that has tables. A PostgreSQL target named by URL is created if it
    does not exist. Raises BackupError on any mismatch after the restore.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(_("No backup file at %(path)s.") % {"path": path})
    engine = _kind_of(path)
    manifest = read_manifest(path)
    if manifest["engine"] != engine:
        raise BackupError(
            _("%(path)s does not match its manifest, which describes a %(engine)s backup.")
            % {"path": path.name, "engine": DISPLAY_NAMES[manifest["engine"]]}
        )
    if _sha256(path) != manifest["sha256"]:
        raise BackupError(
            _("The sha256 of %(path)s differs from its manifest: the file was changed or damaged after the "
              "backup. Nothing was restored.") % {"path": path}
        )
    target = _target(database_url, alias)
    if target.engine != engine:
        raise BackupError(
            _("%(path)s is a backup of %(kind)s; the database %(db)s is %(engine)s.")
            % {"path": path.name, "kind": DISPLAY_NAMES[engine], "db": target, "engine": DISPLAY_NAMES[target.engine]}
        )
    try:
        if engine == POSTGRES:
            _restore_postgres(path, target, replace=replace)
        else:
            _restore_sqlite(path, target, replace=replace)
        found = _checksums_of(target, batch_rows=manifest.get("batch_rows") or checksums.BATCH_ROWS)
    except (DatabaseError, sqlite3.Error) as error:
        raise BackupError(_("Database error on %(db)s: %(error)s") % {"db": target, "error": error}) from error
    expected = manifest["tables"]
    problems = checksums.compare(expected, found)
    if problems:
        raise BackupError(
            _("The restored database %(db)s does not match the manifest of %(path)s; do not rely on it:\n%(problems)s")
            % {"db": target, "path": path.name, "problems": "\n".join(problems)}
        )
    return Restored(
        target=str(target),
        tables=len(expected),
        rows=sum(table["rows"] for table in expected.values()),
        untouched=sorted(set(found) - set(expected)),
    )


def _restore_postgres(path: Path, target: _Target, *, replace: bool) -> None:
    pg_restore = _tool("pg_restore")
    if target.alias is None:
        _create_database_if_missing(target)
    _refuse_unless_empty(target, replace=replace)
    args, env = _pg_connection_args(target.settings)
    # One transaction: a restore that fails half-way leaves the target as it was.
    command = [pg_restore, "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(path)]
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise BackupError(
            _("pg_restore failed (exit status %(status)s); the database %(db)s is unchanged: %(stderr)s")
            % {"status": result.returncode, "db": target, "stderr": result.stderr.decode(errors="replace").strip()}
        )


def _restore_sqlite(path: Path, target: _Target, *, replace: bool) -> None:
    """Copy pages with the backup API into the target, not the file over it: a live database
    in WAL mode keeps its -wal and -shm files, which a copied-over main file would not match."""
    if target.alias is None and not Path(target.settings["NAME"]).parent.is_dir():
        raise BackupError(_("The folder of %(db)s does not exist.") % {"db": target})
    _refuse_unless_empty(target, replace=replace)
    source = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    destination = _sqlite_connection(target)
    try:
        source.backup(destination)
    except sqlite3.Error as error:
        raise BackupError(_("Cannot restore into %(db)s: %(error)s") % {"db": target, "error": error}) from error
    finally:
        source.close()
        if target.alias is None:
            destination.close()


def _refuse_unless_empty(target: _Target, *, replace: bool) -> None:
    if replace:
        return
    if _table_names(target):
        raise BackupError(
            _("The database %(db)s has tables: restoring replaces all its data. Run again with --yes to go ahead.")
            % {"db": target}
        )


def _create_database_if_missing(target: _Target) -> None:
    maintenance = _Target({**target.settings, "NAME": "postgres"}, None)
    wrapper = _open(maintenance)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target.settings["NAME"]])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {wrapper.ops.quote_name(target.settings['NAME'])}")
                logger.info("Created database %s for the restore", target)
    except DatabaseError as error:
        raise BackupError(_("Cannot create the database %(db)s: %(error)s") % {"db": target, "error": error}) from error
    finally:
        wrapper.close()


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a backup file, checked for the fields a restore relies on."""
    manifest_path = _manifest_path(Path(path))
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            _("No manifest %(path)s beside the backup: without it the restore cannot be verified.")
            % {"path": manifest_path}
        ) from None
    except (OSError, ValueError) as error:
        raise BackupError(
            _("The manifest %(path)s cannot be read: %(error)s") % {"path": manifest_path, "error": error}
        ) from error
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or manifest.get("engine") not in EXTENSIONS
        or not isinstance(manifest.get("sha256"), str)
        or not isinstance(manifest.get("tables"), dict)
    ):
        raise BackupError(_("%(path)s is not a backup manifest this version understands.") % {"path": manifest_path})
    return manifest


# --- the daily task's service ------------------------------------------------------------


def make_daily_backup() -> Backup:
    """Back up into BACKUP_DIR, then keep the newest BACKUP_KEEP backups. A failed backup
    raises before anything is deleted."""
    backup = create_backup()
    removed = prune_backups(directory=Path(settings.BACKUP_DIR), keep=settings.BACKUP_KEEP)
    logger.info(
        "Backup %s written: %d bytes, %d tables, %d rows, sha256 %s; removed %d older: %s",
        backup.path, backup.size, len(backup.tables), backup.rows, backup.sha256,
        len(removed), ", ".join(path.name for path in removed) or "none",
    )
    return backup


def prune_backups(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest backups (and their manifests) in `directory`.

    Only files named helpdesk-YYYYmmdd-HHMMSS.dump/.sqlite3 count, so backups made elsewhere
    with --output and other files are left alone; so are partial files of a run in progress
    (those older than a day, left by a crash, are removed). Returns the backups removed.
    """
    if keep < 1:
        raise BackupError(_("BACKUP_KEEP must be at least 1, not %(keep)s.") % {"keep": keep})
    if not directory.is_dir():
        return []
    ours = sorted(
        (path for path in directory.iterdir() if path.is_file() and NAME_PATTERN.match(path.name)),
        key=lambda path: (NAME_PATTERN.match(path.name)["stamp"], path.name),
        reverse=True,
    )
    removed = ours[keep:]
    for path in removed:
        path.unlink(missing_ok=True)
        _manifest_path(path).unlink(missing_ok=True)
    stale = timezone.now().timestamp() - timedelta(days=1).total_seconds()
    for path in directory.iterdir():
        if PARTIAL_PATTERN.match(path.name) and path.stat().st_mtime < stale:
            path.unlink(missing_ok=True)
    return removed


# --- reading a database ----------------------------------------------------------------


def database_checksums(*, database_url: str | None = None) -> checksums.Checksums:
    """{table: {"rows": n, "checksum": md5 hex}} for every table of the configured database
    (or the one `database_url` names), all read in one snapshot."""
    return _checksums_of(_target(database_url, DEFAULT_DB_ALIAS), batch_rows=checksums.BATCH_ROWS)


def _checksums_of(target: _Target, *, batch_rows: int) -> checksums.Checksums:
    if target.engine == SQLITE:
        with _sqlite_session(target) as connection:
            return checksums.sqlite_checksums(connection)
    with _postgres_snapshot(target) as cursor:
        return checksums.postgres_checksums(cursor, batch_rows=batch_rows)


def _table_names(target: _Target) -> list[str]:
    if target.engine == SQLITE:
        with _sqlite_session(target) as connection:
            return [name for name, _columns, _key in checksums.sqlite_tables(connection)]
    with _postgres_snapshot(target) as cursor:
        return [name for name, _quoted, _key in checksums.postgres_tables(cursor)]


@contextmanager
def _postgres_snapshot(target: _Target) -> Iterator[Any]:
    """A cursor in a read-only REPEATABLE READ transaction on a connection of its own."""
    wrapper = _open(target)
    try:
        wrapper.set_autocommit(False)
        with wrapper.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield cursor
        wrapper.rollback()  # read only: nothing to commit
    finally:
        wrapper.close()


@contextmanager
def _sqlite_session(target: _Target) -> Iterator[sqlite3.Connection]:
    connection = _sqlite_connection(target)
    try:
        yield connection
    finally:
        if target.alias is None:  # Django's own connection stays open
            connection.close()


# --- helpers -----------------------------------------------------------------------------


def _target(database_url: str | None, alias: str) -> _Target:
    if not database_url:
        return _Target(connections[alias].settings_dict, alias)
    try:
        parsed = dj_database_url.parse(database_url)
    except ValueError as error:
        raise BackupError(_("Cannot read the database URL: %(error)s") % {"error": error}) from error
    target = _Target(parsed, None)
    if target.engine == SQLITE and str(parsed["NAME"]) in ("", ":memory:"):
        raise BackupError(_("An SQLite database URL must name a file: sqlite:////path/to/file.sqlite3"))
    if target.engine == POSTGRES and not parsed.get("NAME"):
        raise BackupError(_("The database URL must name a database: postgres://user@host:5432/name"))
    return target


def _open(target: _Target) -> BaseDatabaseWrapper:
    """A connection of its own (never the one Django's ORM is using), with Django's setup of
    the session (time zone, options) from the target's settings."""
    handler = ConnectionHandler({DEFAULT_DB_ALIAS: copy.deepcopy(target.settings)})
    wrapper = handler[DEFAULT_DB_ALIAS]
    try:
        wrapper.ensure_connection()
    except DatabaseError as error:
        raise BackupError(
            _("Cannot connect to the database %(db)s: %(error)s") % {"db": target, "error": error}
        ) from error
    return wrapper


def _sqlite_connection(target: _Target) -> sqlite3.Connection:
    """The configured database through Django's own connection (which also reaches the
    in-memory database of tests); a database named by URL through a new one."""
    if target.alias is not None:
        wrapper = connections[target.alias]
        wrapper.ensure_connection()
        return wrapper.connection
    return sqlite3.connect(target.settings["NAME"])


def _pg_connection_args(db: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Command-line options and environment for pg_dump/pg_restore; the password goes in the
    environment (PGPASSWORD), never on a command line other users can read in `ps`."""
    args = ["--no-password"]  # fail at once rather than wait for a prompt nobody answers
    if db.get("HOST"):
        args.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        args.append(f"--port={db['PORT']}")
    if db.get("USER"):
        args.append(f"--username={db['USER']}")
    args.append(f"--dbname={db['NAME']}")
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    options = db.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"), ("passfile", "PGPASSFILE"), ("service", "PGSERVICE"),
    ):
        if options.get(option):
            env[variable] = str(options[option])
    return args, env


def _pg_version(wrapper: BaseDatabaseWrapper) -> str:
    major, minor = divmod(wrapper.pg_version, 10000)
    return f"{major}.{minor}"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            _("%(tool)s was not found on PATH. Install the PostgreSQL client tools of the server's major "
              "version or newer (Debian: apt-get install postgresql-client).") % {"tool": name}
        )
    return found


def _kind_of(path: Path) -> str:
    with path.open("rb") as file:
        head = file.read(16)
    for engine, magic in MAGIC.items():
        if head.startswith(magic):
            return engine
    raise BackupError(
        _("%(path)s is not a backup: neither a pg_dump custom-format file nor an SQLite database.") % {"path": path}
    )


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Yield a partial name beside `path`; once the block succeeds, fsync it and link it into
    place (and fsync the folder), so `path` is either absent or complete after a crash.

    Two runs in the same second (two beats, two worker processes or threads) write partials of
    their own and only one of them can place `path`: the other stops with BackupError, so a
    manifest is never paired with the other run's file.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        yield partial
        with partial.open("rb+") as file:
            os.fsync(file.fileno())
        try:
            os.link(partial, path)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise BackupError(_("%(path)s exists already; a backup never overwrites a file.") % {"path": path}) from None
        except OSError:
            # No hard links on this volume (SMB, exFAT, some FUSE mounts): claim the name with an
            # exclusive create, then rename over the claim, which is ours.
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                raise BackupError(_("%(path)s exists already; a backup never overwrites a file.") % {"path": path}) from None
            os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            leftover.unlink(missing_ok=True)
