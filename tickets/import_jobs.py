"""Imports too big for one request: the file is stored, a worker imports it, the job shows progress.

The worker claims a queued job by compare-and-set, so a task delivered twice imports once. Progress
is written with UPDATE after each batch (outside any transaction), so GET /imports/jobs/<id>
sees it at once. The stored file is deleted when the job ends: the history holds customer data,
and a rejected file is fixed and uploaded again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from .imports import import_tickets
from .models import ImportJob

logger = logging.getLogger(__name__)
S = ImportJob.Status
MAX_STORED_ERRORS = 1000
# Who may move a job where: the worker's claim, its phases, and the end.
TRANSITIONS = {
    S.QUEUED: {S.CHECKING, S.FAILED},
    S.CHECKING: {S.WRITING, S.REJECTED, S.FAILED},
    S.WRITING: {S.DONE, S.FAILED},
}


def _move(job_id: int, old: str, new: str, **fields: Any) -> bool:
    """Compare-and-set a job's status; False if another run moved it first."""
    assert new in TRANSITIONS.get(old, set()), (old, new)
    return ImportJob.objects.filter(pk=job_id, status=old).update(status=new, **fields) == 1


def start_import_job(
    *, chunks: Iterable[bytes], name: str, fmt: str, encoding: str, partial: bool, actor: AbstractBaseUser | None
) -> ImportJob:
    """Store the uploaded file and queue its import after commit."""
    from .tasks import run_import_job_task

    job = ImportJob(original_name=name[:255], format=fmt, encoding=encoding, partial=partial, created_by=actor)
    job.file.save(f"{timezone.now():%Y%m%d%H%M%S}.{fmt}", File(_ChunkFile(chunks)), save=False)
    job.size = job.file.size
    with transaction.atomic():
        job.save()
        transaction.on_commit(lambda job_id=job.pk: run_import_job_task.delay(job_id))
    return job


def run_import_job(*, job_id: int) -> str | None:
    """Import a queued job's file; returns the status it ended in, None if it was not queued."""
    if not _move(job_id, S.QUEUED, S.CHECKING, started_at=timezone.now()):
        return None  # a repeated delivery, or a job gone
    job = ImportJob.objects.get(pk=job_id)
    phase = {"now": S.CHECKING, "lines": 0}

    def progress(name: str, done: int) -> None:
        if name == "writing" and phase["now"] == S.CHECKING:
            _move(job_id, S.CHECKING, S.WRITING, lines_total=phase["lines"], lines_done=0)
            phase["now"] = S.WRITING
        phase["lines"] = done
        ImportJob.objects.filter(pk=job_id).update(lines_done=done)

    try:
        report = import_tickets(
            lambda: _lines(job.file.open("rb")), fmt=job.format, encoding=job.encoding, partial=job.partial,
            progress=progress,
        )
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(status=S.FAILED, finished_at=timezone.now(), problem=repr(exc)[:2000])
        raise
    summary = report.as_dict(MAX_STORED_ERRORS)
    end = S.DONE if report.written else S.REJECTED
    _move(
        job_id, phase["now"], end, finished_at=timezone.now(), created=report.created, updated=report.updated,
        failed=report.failed, errors=summary["errors"], lines_total=report.lines,
    )
    job.file.delete(save=False)
    ImportJob.objects.filter(pk=job_id).update(file="")
    return end


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        yield from handle


class _ChunkFile:
    """The request body as a file for storage.save(): read in chunks, never whole."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data
