"""Two beats: no duplicated effect.

Every entry of CELERY_BEAT_SCHEDULE has a case below (a new entry without one fails
`test_every_beat_entry_has_a_case`): data that gives the task something to do, then the task run
twice, as two beats would send it (one after the other; on PostgreSQL also at once, from two
threads with their own connections), and the effect checked to have happened once. Tasks run as a
worker runs them (`task.apply()`, with what they queue run at once), requests and tasks commit
for real, and webhooks go to a local receiver, so doubled deliveries would show.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery import Task
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.utils import timezone

from config import settings as project_settings
from config.celery import app
from helpdesk import access_review, backups, health, roles, webhooks
from helpdesk.models import (
    Heartbeat,
    IdempotentRequest,
    Notification,
    TaskDelivery,
    WebhookDelivery,
    WebhookEndpoint,
)
from helpdesk.tasks import (
    beat_heartbeat_task,
    forget_stale_task_deliveries_task,
    purge_idempotency_keys_task,
    remind_access_review_task,
    requeue_webhook_deliveries_task,
)
from helpdesk.tasks_backup import backup_database_task
from knowledge import services as kb_services
from knowledge.tasks import remind_overdue_reviews_task
from qa.models import Review, SampleRun, SampleScope
from qa.tasks import draw_daily_samples_task
from tickets import services, sla
from tickets.models import ReportSubscription, SlaPolicy, Ticket
from tickets.tasks import (
    anonymise_expired_conversations_task,
    assign_waiting_tickets_task,
    close_solved_tickets_task,
    sweep_sla_clocks_task,
)
from tickets.tasks_reports import send_report_emails_task

from ..factories import (
    AgentFactory,
    CustomerFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)
from .test_broker_down import Receiver

S = Ticket.Status
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)  # a Tuesday morning
ALL_EVENTS = [choice.value for choice in WebhookEndpoint.Event]


@dataclass(frozen=True)
class Case:
    """A beat entry's task, and `arrange(fixture)` which makes its work and returns the check:
    `check(results)` gets what each run returned (a result, or the exception it raised)."""

    task: Task
    arrange: Callable[[Callable[[str], object]], Callable[[list], None]]


def succeeded(results: list) -> list:
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    return results


def deliveries(event: str) -> int:
    return WebhookDelivery.objects.filter(event=event).count()


# --- the cases, one per beat entry ---------------------------------------------------------


def close_solved_tickets(fixture) -> Callable[[list], None]:
    due = TicketFactory.create_batch(3, status=S.SOLVED, solved_at=timezone.now() - timedelta(days=10))
    fresh = TicketFactory(status=S.SOLVED, solved_at=timezone.now())

    def check(results):
        assert sum(succeeded(results)) == 3
        for ticket in due:
            ticket.refresh_from_db()
            assert ticket.status == S.CLOSED
            assert ticket.history.filter(history_change_reason="auto_close").count() == 1
        assert Ticket.objects.get(pk=fresh.pk).status == S.SOLVED
        assert deliveries("ticket.status_changed") == 3

    return check


def sweep_sla_clocks(fixture) -> Callable[[list], None]:
    policy = SlaPolicy.objects.create(name="two beats: 5 s", position=0, channels=["other"])
    policy.targets.create(metric="first_response", seconds=5)
    sla.forget_policies()
    with time_machine.travel(timezone.now() - timedelta(minutes=2)):
        tickets = [
            services.open_ticket(customer=CustomerFactory(), subject="在吗", channel="other", body="在吗")
            for _ in range(3)
        ]

    def check(results):
        succeeded(results)
        for ticket in tickets:
            ticket.refresh_from_db()
            assert list(ticket.escalations.values_list("level", flat=True)) == [1]
            assert ticket.history.filter(history_change_reason="sla_escalation:1").count() == 1
            assert ticket.priority == Ticket.Priority.HIGH  # one step up, once
        assert deliveries("sla.breached") == deliveries("escalation.created") == 3

    return check


def assign_waiting_tickets(fixture) -> Callable[[list], None]:
    team = TeamFactory()
    agents = [AgentFactory(teams=[team], presence="online", max_concurrent=2) for _ in range(2)]
    waiting = [TicketFactory(team=team, status=S.NEW) for _ in range(6)]

    def check(results):
        assert sum(succeeded(results)) == 4
        assigned = Ticket.objects.filter(team=team, assignee__isnull=False)
        assert sorted(assigned.values_list("pk", flat=True)) == [t.pk for t in waiting[:4]]  # oldest first
        assert Counter(assigned.values_list("assignee", flat=True)) == {agent.pk: 2 for agent in agents}  # at capacity, not over
        for ticket in assigned:
            assert ticket.history.filter(history_change_reason="routing").count() == 1

    return check


def draw_qa_samples(fixture) -> Callable[[list], None]:
    group = Group.objects.get(name=roles.QA_INSPECTOR)
    for n in range(3):
        UserFactory(username=f"inspector{n}").groups.add(group)
    yesterday = timezone.localdate() - timedelta(days=1)
    at = datetime.combine(yesterday, datetime.min.time(), tzinfo=SHANGHAI) + timedelta(hours=15)
    TicketFactory.create_batch(
        60, status=S.SOLVED, solved_at=at, first_response_at=at - timedelta(hours=1), assignee=AgentFactory()
    )
    scopes = list(SampleScope.objects.filter(is_active=True))

    def check(results):
        assert sum(succeeded(results)) == len(scopes)
        for scope in scopes:
            assert SampleRun.objects.filter(day=yesterday, scope=scope).count() == 1
        everyone = SampleRun.objects.get(day=yesterday, scope__team=None)
        assert everyone.reviews.count() == ceil(60 * everyone.rate)
        assert Review.objects.count() == sum(run.reviews.count() for run in SampleRun.objects.all())

    return check


def requeue_webhook_deliveries(fixture) -> Callable[[list], None]:
    receiver = fixture("receiver")
    endpoint = WebhookEndpoint.objects.get()
    for n in range(3):
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="ticket.created", payload={"n": n})
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=10))

    def check(results):
        assert succeeded(results)[0] == 3
        assert Counter(pk for pk, _event in receiver.received) == dict.fromkeys(
            WebhookDelivery.objects.values_list("pk", flat=True), 1
        )
        assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}

    return check


def purge_idempotency_keys(fixture) -> Callable[[list], None]:
    user = UserFactory()
    for key in ("old-1", "old-2", "fresh"):
        IdempotentRequest.objects.create(user=user, key=key, request_hash="x", status_code=201, response={})
    IdempotentRequest.objects.exclude(key="fresh").update(created_at=timezone.now() - timedelta(hours=25))

    def check(results):
        assert sum(succeeded(results)) == 2
        assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["fresh"]

    return check


def send_report_emails(fixture) -> Callable[[list], None]:
    outbox = fixture("mailoutbox")
    for frequency in ReportSubscription.Frequency.values:
        ReportSubscription.objects.create(
            name=f"ops {frequency}", frequency=frequency, recipients="boss@example.com", language="en"
        )

    def check(results):
        assert sum(succeeded(results)) == 2
        assert len(outbox) == 2  # the week before and the month before, each once
        assert ReportSubscription.objects.filter(last_period_sent__isnull=True).count() == 0

    return check


def backup_database(fixture) -> Callable[[list], None]:
    """What the daily backup guarantees when run twice: each run makes its own complete backup
    (its file matches its manifest) or refuses cleanly (a file of that second exists already), and
    pruning keeps at most BACKUP_KEEP. Two backups of one day are possible: see the report."""
    settings = fixture("settings")
    settings.BACKUP_DIR = fixture("tmp_path") / "backups"
    settings.BACKUP_KEEP = 2

    def check(results):
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert made, results
        kept = sorted(p for p in Path(settings.BACKUP_DIR).iterdir() if backups.NAME_PATTERN.match(p.name))
        for error in refused:  # "<the file made by the other run> exists already"
            assert isinstance(error, backups.BackupError) and any(str(path) in str(error) for path in kept), refused
        assert 1 <= len(kept) <= settings.BACKUP_KEEP
        for path in kept:
            manifest = json.loads(path.with_name(path.name + ".json").read_text())
            assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # restorable, not mixed up

    return check


def anonymise_expired_conversations(fixture) -> Callable[[list], None]:
    fixture("settings").RETENTION_CONVERSATION_DAYS = 30
    customer = CustomerFactory(name="王小明")
    expired = [
        TicketFactory(customer=customer, subject="王小明的退款", status=S.CLOSED, closed_at=timezone.now() - timedelta(days=40))
        for _ in range(2)
    ]
    kept = TicketFactory(customer=customer, subject="王小明的发票", status=S.CLOSED, closed_at=timezone.now() - timedelta(days=10))
    for ticket in [*expired, kept]:
        MessageFactory(ticket=ticket, body="我是王小明")

    def check(results):
        assert sum(succeeded(results)) == 2  # each ticket counted by one run
        for ticket in expired:
            ticket.refresh_from_db()
            assert ticket.anonymised_at is not None and "王小明" not in ticket.subject
        assert Ticket.objects.get(pk=kept.pk).anonymised_at is None

    return check


def beat_heartbeat(fixture) -> Callable[[list], None]:
    def check(results):
        succeeded(results)
        assert Heartbeat.objects.filter(name=health.BEAT).count() == 1
        assert Heartbeat.objects.count() == 1

    return check


def remind_article_reviews(fixture) -> Callable[[list], None]:
    alice, lena, outbox = fixture("alice"), fixture("lena"), fixture("mailoutbox")
    alice.user.email = "alice@example.com"
    alice.user.save()
    with time_machine.travel(timezone.now() - timedelta(days=100)):
        for title in ("退货流程", "发票怎么开"):
            article = kb_services.create_article(actor=alice.user, title=title, body="……")
            kb_services.submit_for_review(article=article, actor=alice.user)
            kb_services.publish(article=article, reviewer=lena.user)  # review due 90 days after

    def check(results):
        assert sum(succeeded(results)) == 1  # one owner told, by one of the runs
        assert Notification.objects.filter(recipient=alice.user, kind="kb_review_due").count() == 1
        assert len(outbox) == 1

    return check


def remind_access_review(fixture) -> Callable[[list], None]:
    ada, olga = fixture("ada"), fixture("olga")  # olga: staff, never logged in: flagged

    def check(results):
        assert sum(succeeded(results)) == 1  # ada told, by one of the runs
        assert Notification.objects.filter(recipient=ada, kind=access_review.REMINDER_KIND).count() == 1
        assert not Notification.objects.filter(recipient=olga).exists()

    return check


def forget_stale_task_deliveries(fixture) -> Callable[[list], None]:
    day_ago = timezone.now() - timedelta(days=2)
    TaskDelivery.objects.create(task_id="died", name="x", first_started_at=day_ago, last_started_at=day_ago)
    TaskDelivery.objects.create(task_id="flagged", name="x", last_started_at=day_ago, flagged_at=day_ago)
    TaskDelivery.objects.create(task_id="running", name="x")

    def check(results):
        assert sum(succeeded(results)) == 1
        assert set(TaskDelivery.objects.values_list("task_id", flat=True)) == {"flagged", "running"}

    return check


CASES: dict[str, Case] = {
    "close-solved-tickets": Case(close_solved_tickets_task, close_solved_tickets),
    "sweep-sla-clocks": Case(sweep_sla_clocks_task, sweep_sla_clocks),
    "assign-waiting-tickets": Case(assign_waiting_tickets_task, assign_waiting_tickets),
    "draw-qa-samples": Case(draw_daily_samples_task, draw_qa_samples),
    "requeue-webhook-deliveries": Case(requeue_webhook_deliveries_task, requeue_webhook_deliveries),
    "purge-idempotency-keys": Case(purge_idempotency_keys_task, purge_idempotency_keys),
    "send-report-emails": Case(send_report_emails_task, send_report_emails),
    "backup-database": Case(backup_database_task, backup_database),
    "anonymise-expired-conversations": Case(anonymise_expired_conversations_task, anonymise_expired_conversations),
    "beat-heartbeat": Case(beat_heartbeat_task, beat_heartbeat),
    "remind-article-reviews": Case(remind_overdue_reviews_task, remind_article_reviews),
    "remind-access-review": Case(remind_access_review_task, remind_access_review),
    "forget-stale-task-deliveries": Case(forget_stale_task_deliveries_task, forget_stale_task_deliveries),
}


def test_every_beat_entry_has_a_case(settings):
    every_entry = set(project_settings._beat)  # switched-off entries included
    assert every_entry == set(CASES), "a beat entry needs a two-beats case here"
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] == CASES[name].task.name


# --- running them ------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """Every event goes to a local endpoint; each delivery's POSTs are counted."""
    endpoint = Receiver()
    WebhookEndpoint.objects.create(name="everything", url=endpoint.url, secret="x", events=ALL_EVENTS)
    webhooks.forget_endpoints()
    yield endpoint
    endpoint.close()


@pytest.fixture
def worker_like():
    """Tasks queued by a task run at once, in its thread, as a worker would run them later."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def run(task: Task):
    """One run as a worker does it: the task's result, or the exception it ended with."""
    return task.apply().result  # .get() would refuse in a thread: it guards against joins inside tasks


def run_at_once(task: Task) -> list:
    """Two runs started together from two threads, each with its own database connection."""
    results: list = [None, None]
    start = threading.Barrier(2)

    def one(index: int) -> None:
        try:
            start.wait()
            results[index] = run(task)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_each_delivery_posted_once(receiver: Receiver) -> None:
    posted = Counter(pk for pk, _event in receiver.received)
    doubled = {pk: n for pk, n in posted.items() if n > 1}
    assert not doubled, f"deliveries POSTed more than once: {doubled}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("entry", sorted(CASES))
def test_two_runs_one_after_the_other_have_one_effect(entry, request, receiver, worker_like):
    case = CASES[entry]
    with time_machine.travel(NOW):
        check = case.arrange(request.getfixturevalue)
        results = [run(case.task), run(case.task)]
    check(results)
    assert_each_delivery_posted_once(receiver)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("entry", sorted(CASES))
def test_two_runs_at_once_have_one_effect(entry, request, receiver, worker_like):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite takes one writer at a time)")
    case = CASES[entry]
    with time_machine.travel(NOW):
        check = case.arrange(request.getfixturevalue)
        results = run_at_once(case.task)
        results.append(run(case.task))  # and once more, later: still nothing new
    check(results)
    assert_each_delivery_posted_once(receiver)



@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_reminder_runs_that_read_together_tell_the_owner_once(request, receiver, worker_like, monkeypatch):
    """The runs above may simply not overlap; here both have read the due articles before either
    tells anyone (the race two beats at 09:00 run), and still one notice goes."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite takes one writer at a time)")
    from knowledge import services as knowledge_services

    both_read = threading.Barrier(2, timeout=1)
    real_notify = knowledge_services.notify

    def notify(**kwargs):
        try:
            both_read.wait()  # the other run reaches this point too, unless it found nothing to do
        except threading.BrokenBarrierError:
            pass
        return real_notify(**kwargs)

    monkeypatch.setattr(knowledge_services, "notify", notify)
    with time_machine.travel(NOW):
        check = remind_article_reviews(request.getfixturevalue)
        results = run_at_once(remind_overdue_reviews_task)
    check(results)
    assert sorted(results) == [0, 1]
