"""The review reminder run by a real worker on the configured broker, as beat runs it."""

from __future__ import annotations

import uuid

import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping for the test worker
import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun

from config.celery import app
from helpdesk.models import Notification
from knowledge import services
from knowledge.tasks import remind_overdue_reviews_task

from ..tickets.test_tasks import wait_for


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_reminds_owners_of_overdue_reviews_once(alice, lena):
    queue = f"test-{uuid.uuid4().hex}"
    with time_machine.travel("2026-08-01 10:00+08:00", tick=False):
        article = services.create_article(actor=alice.user, title="发票怎么开", body="在订单详情申请开票。")
        services.submit_for_review(article=article, actor=alice.user)
        services.publish(article=article, reviewer=lena.user)  # due 2026-10-30
    finished = []

    def count(sender=None, **kwargs):
        if getattr(sender, "name", None) == remind_overdue_reviews_task.name:
            finished.append(kwargs["retval"])

    task_postrun.connect(count, weak=False)
    try:
        with time_machine.travel("2026-11-02 09:00+08:00", tick=True):
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]):
                remind_overdue_reviews_task.apply_async(queue=queue)
                assert wait_for(lambda: len(finished) == 1)
                remind_overdue_reviews_task.apply_async(queue=queue)  # a second beat: nobody told twice
                assert wait_for(lambda: len(finished) == 2)
    finally:
        task_postrun.disconnect(count)
    assert finished == [1, 0]
    assert Notification.objects.filter(recipient=alice.user, kind="kb_review_due").count() == 1


def test_beat_runs_the_reminder_daily_at_nine(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["remind-article-reviews"]
    assert entry["task"] == remind_overdue_reviews_task.name == "knowledge.remind_overdue_reviews"
    assert entry["schedule"].hour == {9} and entry["schedule"].minute == {0}
