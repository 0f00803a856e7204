"""The delivery guard in-process: each delivery run the way a worker runs it (Celery's tracer,
not eagerly), a dying worker played by an exception no handler catches."""

from __future__ import annotations

import logging

import pytest
from celery.app.trace import build_tracer
from celery.exceptions import Retry
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.celery import app
from helpdesk import task_guard
from helpdesk.models import Notification, TaskDelivery
from helpdesk.tasks import purge_idempotency_keys_task
from tickets.tasks import check_sla_clock_task

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:helpdesk_taskdelivery_changelist")


class WorkerDied(BaseException):
    """A worker killed mid-task: nothing after the body runs, nothing is acknowledged."""


def deliver(task, *args, task_id: str = "task-1", **kwargs):
    """One delivery of `task`, as a worker's pool process runs it; None when the worker died."""
    trace = build_tracer(task.name, task, app=app, eager=False, propagate=False)
    request = {"id": task_id, "hostname": "w1@host", "delivery_info": {"routing_key": "celery"}}
    try:
        return trace(task_id, list(args), kwargs, request)
    except WorkerDied:
        return None


@pytest.fixture
def body(monkeypatch):
    """The body of check_sla_clock_task (a late-acknowledged task); `outcomes` says what its
    next runs do: "dies", "fails" or "retries"; then it returns."""

    class Body:
        def __init__(self) -> None:
            self.runs = 0
            self.outcomes: list[str] = []

        def __call__(self, *, clock_id: int) -> None:
            self.runs += 1
            outcome = self.outcomes.pop(0) if self.outcomes else "returns"
            if outcome == "dies":
                raise WorkerDied
            if outcome == "fails":
                raise ValueError("a bug")
            if outcome == "retries":
                raise Retry("again", when=60)

    fake = Body()
    monkeypatch.setattr("tickets.sla.check_clock", fake)
    return fake


@pytest.fixture
def limit(settings):
    settings.TASK_MAX_DELIVERIES = 3
    return 3


def test_it_counts_each_delivery_until_the_task_ends_and_then_forgets_it(body, limit):
    body.outcomes = ["dies", "dies"]
    deliver(check_sla_clock_task, 42)
    deliver(check_sla_clock_task, 42)
    row = TaskDelivery.objects.get(task_id="task-1")
    assert (row.name, row.deliveries, row.flagged_at, row.worker, row.queue) == (
        "tickets.check_sla_clock", 2, None, "w1@host", "celery")
    assert row.arguments == {"args": [42], "kwargs": {}}
    assert deliver(check_sla_clock_task, 42).info is None  # it succeeded
    assert body.runs == 3
    assert not TaskDelivery.objects.exists()


@pytest.mark.parametrize("outcome", ["fails", "retries"])
def test_an_exception_ends_the_count_too_since_max_retries_bounds_it(body, limit, outcome):
    body.outcomes = ["dies", outcome]
    deliver(check_sla_clock_task, 42)
    deliver(check_sla_clock_task, 42)
    assert not TaskDelivery.objects.exists()


def test_past_the_limit_the_task_is_not_run_but_flagged_and_administrators_told_once(body, limit, ada, alice, caplog):
    UserFactory(username="root", is_superuser=True)
    UserFactory(username="gone", is_superuser=True, is_active=False)
    body.outcomes = ["dies"] * 3
    for _ in range(3):
        deliver(check_sla_clock_task, task_id="doomed", clock_id=42)
    with caplog.at_level(logging.ERROR, logger="helpdesk.task_guard"):
        skipped = deliver(check_sla_clock_task, task_id="doomed", clock_id=42)
        deliver(check_sla_clock_task, task_id="doomed", clock_id=42)  # a stray copy: not run, not told again
    assert body.runs == 3
    assert skipped.info.state == "IGNORED"  # acknowledged, not delivered again
    row = TaskDelivery.objects.get(task_id="doomed")
    assert row.deliveries == 5 and row.flagged_at is not None
    assert row.arguments == {"args": [], "kwargs": {"clock_id": 42}}
    told = Notification.objects.filter(kind=task_guard.NOTIFICATION_KIND)
    assert sorted(told.values_list("recipient__username", flat=True)) == ["ada", "root"]
    assert "tickets.check_sla_clock" in told.first().text
    (record,) = caplog.records
    assert "doomed" in record.getMessage() and "clock_id" not in record.getMessage()


def test_it_leaves_tasks_without_acks_late_alone(monkeypatch):
    def dies():
        raise WorkerDied

    monkeypatch.setattr("helpdesk.services.purge_idempotency_keys", dies)
    with CaptureQueriesContext(connection) as queries:
        deliver(purge_idempotency_keys_task)
    assert not any("taskdelivery" in query["sql"] for query in queries)
    assert not TaskDelivery.objects.exists()


def test_eager_runs_and_direct_calls_are_not_guarded(body):
    with CaptureQueriesContext(connection) as queries:
        check_sla_clock_task.apply((42,))
        check_sla_clock_task(42)
    assert body.runs == 2
    assert not any("taskdelivery" in query["sql"] for query in queries)


def test_a_guarded_task_costs_one_statement_when_it_starts_and_one_when_it_ends(body):
    with CaptureQueriesContext(connection) as queries:
        deliver(check_sla_clock_task, 42)
    assert [query["sql"].split()[0] for query in queries] == ["INSERT", "DELETE"]


def test_a_database_error_lets_the_task_run_unguarded(body, monkeypatch):
    def down(**kwargs):
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(task_guard, "_count_delivery", down)
    assert deliver(check_sla_clock_task, 42).info is None
    assert body.runs == 1


def test_long_arguments_are_kept_cut():
    assert task_guard.start(task_id="long", name="tickets.check_sla_clocks", args=[list(range(2000))], kwargs={})
    row = TaskDelivery.objects.get()
    assert set(row.arguments) == {"truncated"} and len(row.arguments["truncated"]) == task_guard.ARGUMENTS_LIMIT


def flagged(task_id: str = "doomed", **fields) -> TaskDelivery:
    from django.utils import timezone

    values = {"name": "tickets.check_sla_clock", "arguments": {"args": [], "kwargs": {"clock_id": 42}},
              "queue": "celery", "deliveries": 4, "flagged_at": timezone.now(), **fields}
    return TaskDelivery.objects.create(task_id=task_id, **values)


def test_administrators_see_flagged_tasks_only(client, ada):
    shown = flagged()
    TaskDelivery.objects.create(task_id="running", name="tickets.check_sla_clock", deliveries=1)
    client.force_login(ada)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [shown]
    detail = client.get(reverse("admin:helpdesk_taskdelivery_change", args=[shown.pk]))
    assert detail.status_code == 200 and "clock_id" in detail.content.decode()


def test_an_administrator_marks_a_flagged_task_resolved(client, ada):
    row = flagged()
    client.force_login(ada)
    response = client.post(CHANGELIST, {"action": "mark_resolved", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.resolved_at is not None and row.resolved_by == ada


def test_an_administrator_runs_a_flagged_task_again_with_its_arguments(client, ada, monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    row = flagged()
    client.force_login(ada)
    response = client.post(CHANGELIST, {"action": "run_again", "_selected_action": [row.pk]}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")
    assert "1 task queued again." in [str(m) for m in response.context["messages"]]
    assert sent == [("tickets.check_sla_clock", {"args": [], "kwargs": {"clock_id": 42}, "task_id": "doomed", "queue": "celery"})]
    assert not TaskDelivery.objects.exists()  # the next delivery counts from one


def test_run_again_refuses_cut_arguments_and_keeps_the_row_when_the_broker_refuses(client, ada, monkeypatch):
    cut = flagged("cut", arguments={"truncated": "{\"args\": [\"xxxx"})
    kept = flagged("kept")

    def broker_down(name, **options):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(app, "send_task", broker_down)
    with pytest.raises(ConnectionRefusedError):
        task_guard.run_again(delivery=kept)
    assert TaskDelivery.objects.get(task_id="kept").flagged_at == kept.flagged_at
    client.force_login(ada)
    response = client.post(CHANGELIST, {"action": "run_again", "_selected_action": [cut.pk]}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")
    assert any("cannot run again" in str(m) for m in response.context["messages"])
    assert TaskDelivery.objects.filter(task_id="cut").exists()


@pytest.mark.parametrize("persona", ["alice", "lena", "iris", "tom", "olga"])
def test_no_one_else_sees_or_acts_on_flagged_tasks(client, persona, request):
    row = flagged()
    user = request.getfixturevalue(persona)
    client.force_login(getattr(user, "user", user))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(reverse("admin:helpdesk_taskdelivery_change", args=[row.pk])).status_code == 403
    assert client.post(CHANGELIST, {"action": "mark_resolved", "_selected_action": [row.pk]}).status_code == 403
    assert client.post(CHANGELIST, {"action": "run_again", "_selected_action": [row.pk]}).status_code == 403
    row.refresh_from_db()
    assert row.resolved_at is None


def test_a_role_given_the_permissions_by_hand_is_still_refused(client, olga):
    from django.contrib.auth.models import Permission

    olga.user_permissions.add(*Permission.objects.filter(codename__endswith="_taskdelivery"))
    client.force_login(User.objects.get(pk=olga.pk))
    assert client.get(CHANGELIST).status_code == 403


def test_the_migration_gives_administrators_the_permissions(ada):
    assert all(ada.has_perm(f"helpdesk.{p}_taskdelivery") for p in ("view", "change", "delete"))


def test_the_migration_grants_on_an_upgraded_database_too(ada):
    """On a database migrated before 0012, no older grant covers the new model."""
    from importlib import import_module

    from django.contrib.auth.models import Group, Permission
    from django.db.migrations.loader import MigrationLoader

    administrators = Group.objects.get(name="Administrator")
    administrators.permissions.remove(*Permission.objects.filter(codename__endswith="_taskdelivery"))
    state = MigrationLoader(connection).project_state(("helpdesk", "0012_task_deliveries"))
    import_module("helpdesk.migrations.0012_task_deliveries").grant(state.apps, None)
    assert administrators.permissions.filter(codename__endswith="_taskdelivery").count() == 4
