"""Big history files as jobs: uploaded (202 and the job's URL), imported by a real worker, progress
and errors read back from the API and the admin."""

from __future__ import annotations

import csv
import io
import time
import uuid

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from tickets import import_jobs, imports
from tickets.models import ImportJob, Ticket

from ..api.test_imports import line
from .test_import_files import rows_of
from .test_tasks import wait_for

# The assertions read the English messages; the default language is zh-hans.
pytestmark = pytest.mark.usefixtures("english")

JOBS = "/api/v1/imports/jobs"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def body_of(*external_ids, bad=None):
    lines = [line(external_id) for external_id in external_ids]
    if bad is not None:
        lines[bad] = line(external_ids[bad], channel="fax")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def routed_to(monkeypatch):
    """Import tasks go to a queue of this test's own, so a dev worker on this machine takes nothing."""
    queue = f"test-{uuid.uuid4().hex}"
    monkeypatch.setitem(app.conf, "task_routes", {"tickets.run_import_job": {"queue": queue}})
    monkeypatch.setattr(app.amqp, "_rtable", None)
    monkeypatch.delitem(app.amqp.__dict__, "router", raising=False)
    yield queue
    app.amqp.__dict__.pop("router", None)
    app.amqp._rtable = None


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_imports_an_uploaded_file_and_the_job_shows_its_progress(api, media, routed_to, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    write = imports._Importer.write

    def slow_write(self, batch, report):  # slow enough for the test to watch the batches go by
        time.sleep(0.4)
        write(self, batch, report)

    monkeypatch.setattr(imports._Importer, "write", slow_write)
    ids = [f"job-{n}" for n in range(10)]
    seen = []
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[routed_to]):
        response = api.post(
            f"{JOBS}?partial=false", body_of(*ids), content_type="application/x-ndjson", HTTP_X_FILE_NAME="old.jsonl"
        )
        assert response.status_code == 202, response.content
        url = response["Location"]
        assert response.json()["url"] == url and response.json()["status"] == "queued"

        def finished():
            answer = api.get(url)
            if answer.status_code == 503 and answer.has_header("Retry-After"):
                return False  # SQLite's in-memory test database locked by the worker's write: ask again, as a client would
            job = answer.json()
            seen.append((job["status"], job["lines_done"], job["progress"]))
            return job["status"] in ("done", "rejected", "failed")

        assert wait_for(finished, timeout=60)
    job = api.get(url).json()
    assert (job["status"], job["created"], job["failed"], job["lines_total"], job["progress"]) == ("done", 10, 0, 10, 1.0)
    assert job["file_name"] == "old.jsonl"
    writing = [progress for status, _done, progress in seen if status == "writing"]
    assert any(0 < p < 1 for p in writing), seen  # seen part-way
    assert writing == sorted(writing)
    assert Ticket.objects.count() == 10
    assert not ImportJob.objects.get().file  # the stored upload is gone once imported
    assert not list(media.rglob("*.jsonl"))


@pytest.mark.django_db
def test_a_job_with_a_bad_line_is_rejected_naming_it_and_writes_nothing(api, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(JOBS, body_of("a-1", "a-2", "a-3", bad=1), content_type="application/x-ndjson")
    assert response.status_code == 202 and len(queued) == 1
    job = ImportJob.objects.get()
    assert job.file and job.size == len(body_of("a-1", "a-2", "a-3", bad=1))
    assert import_jobs.run_import_job(job_id=job.pk) == "rejected"
    answer = api.get(response["Location"]).json()
    assert (answer["status"], answer["failed"], answer["created"]) == ("rejected", 1, 0)
    assert answer["errors"] == [{"line": 2, "field": "channel", "error": answer["errors"][0]["error"]}]
    assert answer["errors"][0]["error"].startswith("channel: ")
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_a_job_runs_once_however_often_its_task_is_delivered(api, media):
    response = api.post(f"{JOBS}?partial=true", body_of("b-1", "b-2", bad=1), content_type="application/x-ndjson")
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert import_jobs.run_import_job(job_id=job.pk) == "done"
    assert import_jobs.run_import_job(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.created, job.failed) == ("done", 1, 1)
    assert Ticket.objects.get().external_id == "b-1"


@pytest.mark.django_db
def test_a_csv_job_and_its_encoding_option(api, media):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows_of(("c-1", "张三", {})))
    response = api.post(
        f"{JOBS}?encoding=gb18030", buffer.getvalue().encode("gb18030"), content_type="text/csv"
    )
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert (job.format, job.encoding) == ("csv", "gb18030")
    assert import_jobs.run_import_job(job_id=job.pk) == "done"
    assert Ticket.objects.get().customer.name == "张三"
    assert api.post(f"{JOBS}?encoding=latin-9", b"x", content_type="text/csv").json()["error"]["fields"] == {
        "encoding": ["unknown encoding “latin-9” (use utf-8, gb18030 or auto)"]
    }


@pytest.mark.django_db
def test_a_job_is_shown_to_its_creator_and_administrators_only(api, media, client, ada, alice, olga):
    from django.contrib.auth.models import Permission

    url = api.post(JOBS, body_of("d-1"), content_type="application/x-ndjson")["Location"]
    client.force_login(alice.user)
    assert client.get(url).status_code == 403  # agents hold no import permission
    olga.user_permissions.add(Permission.objects.get(codename="import_tickets"))
    client.force_login(olga)  # may import, but this job is not hers
    assert client.get(url).status_code == 404
    client.force_login(ada)
    assert client.get(url).status_code == 200
    assert client.get("/admin/tickets/importjob/").status_code == 200
    assert client.get(f"/admin/tickets/importjob/{ImportJob.objects.get().pk}/change/").status_code == 200
