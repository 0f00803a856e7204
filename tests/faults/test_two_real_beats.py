"""Two real `celery beat` processes and two workers on one broker: every scheduled job runs once
per period, and its effects happen once.

The beats run the project's scheduler (helpdesk.beat) on a short schedule
(tests/faults/beat_settings.py: the SLA sweep every second as shipped, the heartbeat every 2 s,
and two note tasks that append a line per run to a file). Runs are counted where they happen:
lines in the notes file, "succeeded" lines in the workers' logs, escalations in the database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection

from config.celery import app
from tickets import services, sla
from tickets.models import Escalation, SlaPolicy, Ticket

from ..factories import CustomerFactory
from .test_worker_killed import ROOT, Worker, wait_for
from .test_worker_killed import pytestmark as worker_marks

pytestmark = worker_marks
RUN_SECONDS = 9


def start_beat(tmp_path: Path, n: int, notes: Path) -> subprocess.Popen:
    database = urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    env = {
        **os.environ, "DATABASE_URL": database.geturl(), "DJANGO_SETTINGS_MODULE": "tests.faults.beat_settings",
        "BEAT_TEST_NOTES": str(notes), "LOG_FORMAT": "plain",
    }
    log = (tmp_path / f"beat{n}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "--schedule", str(tmp_path / f"beat{n}")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_two_beats_run_every_scheduled_job_once_per_period(tmp_path, support_team, lena):
    app.control.purge()
    notes = tmp_path / "notes.txt"
    notes.touch()
    workers = [Worker("celery", tmp_path / f"worker{n}.log") for n in (1, 2)]
    beats = []
    try:
        for worker in workers:
            worker.wait_ready()
        policy = SlaPolicy.objects.create(name="two real beats: 2 s", position=0, channels=["other"])
        policy.targets.create(metric="first_response", seconds=2)
        sla.forget_policies()
        tickets = [
            services.open_ticket(customer=CustomerFactory(), subject="在吗", channel="other", body="在吗", team=support_team)
            for _ in range(3)
        ]
        started = time.monotonic()
        beats = [start_beat(tmp_path, n, notes) for n in (1, 2)]
        logs = [tmp_path / f"beat{n}.log" for n in (1, 2)]
        assert wait_for(lambda: all("beat: Starting" in log.read_text() for log in logs), 60), [l.read_text() for l in logs]
        time.sleep(RUN_SECONDS)  # both beats sending
        for beat in beats:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(20)
        elapsed = time.monotonic() - started
        time.sleep(3)  # the workers finish what the beats sent
    finally:
        for beat in beats:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGKILL)
        for worker in workers:
            worker.kill()
        app.control.purge()
    beat_logs = "".join((tmp_path / f"beat{n}.log").read_text() for n in (1, 2))
    assert beat_logs.count("Sending due task note-every-second") >= 2 * (RUN_SECONDS - 3), beat_logs  # both beats ran
    worker_logs = "".join(worker.output() for worker in workers)

    def runs(task: str) -> int:
        return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", worker_logs))

    lines = notes.read_text().split()
    for name, count, period in [
        ("note-every-second", lines.count("every-second"), 1),
        ("note-every-3-seconds", lines.count("every-3-seconds"), 3),
        ("beat-heartbeat", runs("helpdesk.beat_heartbeat"), 2),
        ("sweep-sla-clocks", runs("tickets.sweep_sla_clocks"), 1),
    ]:
        # Each beat alone would run it about elapsed / period times; both together, twice that.
        assert RUN_SECONDS / period - 3 <= count <= elapsed / period + 1, (name, count, elapsed, beat_logs)
    for ticket in tickets:
        ticket.refresh_from_db()
        assert list(ticket.escalations.values_list("level", flat=True)) == [1]
        assert ticket.priority == Ticket.Priority.HIGH
    assert Escalation.objects.count() == 3
