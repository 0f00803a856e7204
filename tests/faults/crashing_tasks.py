"""Tasks for the fault tests only; a test worker loads them with `--include tests.faults.crashing_tasks`.

Each one appends a line to the file it is given, so a test counts how often its body ran.
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import shared_task


def _note(path: str, text: str) -> None:
    with Path(path).open("a") as notes:
        notes.write(text + "\n")
        notes.flush()
        os.fsync(notes.fileno())


@shared_task(name="tests.faults.kill_own_worker", acks_late=True, ignore_result=True)
def kill_own_worker_task(path: str) -> None:
    """Dies the way an out-of-memory kill does: no exception, no cleanup, no acknowledgement."""
    _note(path, "started")
    os._exit(1)


@shared_task(name="tests.faults.note", acks_late=True, ignore_result=True)
def note_task(path: str, text: str) -> None:
    _note(path, text)
