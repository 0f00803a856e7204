"""The delivery guard: a task that keeps killing its worker is stopped and shown to a person.

Tasks acknowledged late (`helpdesk.tasks.IDEMPOTENT`) are delivered again when their worker
dies under them (OOM, a kill, a crash in a C library): that is what makes them survive a lost
worker. A task that kills its worker *every* time would then be delivered for ever, taking a
worker down each time. So every delivery of such a task is counted in `TaskDelivery` before its
body runs, and the row is deleted when the task ends however it ends (a success, a failure or a
retry: exceptions are already bounded by `max_retries`). A row that stays is a task whose
worker died. Past `TASK_MAX_DELIVERIES` deliveries the body is not run, the message is
acknowledged, the row is flagged, and administrators are told once. They resolve the row, or run
the task again, in the admin ("Flagged tasks", `helpdesk.admin_tasks`).

Cost: one upsert when a guarded task starts and one delete when it ends, a round trip each,
on no other task (measured: docs/deploy.md, "A worker dies"). Eager and direct calls are not
guarded: nothing can deliver them again.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task, current_app
from celery.exceptions import Ignore
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .errors import DomainError

# Celery may load this module (the app's task class) before Django's apps are ready, so the
# models are imported inside the functions.
if TYPE_CHECKING:
    from .models import TaskDelivery

logger = logging.getLogger(__name__)

# Longer arguments are kept cut (for the administrator to read), and the task cannot be run again.
ARGUMENTS_LIMIT = 2000
NOTIFICATION_KIND = "task_flagged"
# PostgreSQL: the count's own statements commit without waiting for the disk (set_config(…, true)
# lasts until the statement's commit). Waiting costs milliseconds per task on a slow disk; a
# database crash can then lose the last fraction of a second of counts, which costs at most one
# more delivery of a task, or leaves the row of a task that ended (harmless).
ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


class GuardedTask(Task):
    """The app's task class (config/celery.py): guards the tasks that have `acks_late`."""

    def before_start(self, task_id: str, args: tuple, kwargs: dict) -> None:
        super().before_start(task_id, args, kwargs)
        if self.acks_late and not self.request.is_eager:
            request = self.request
            allowed = start(
                task_id=task_id, name=self.name, args=args, kwargs=kwargs,
                queue=(request.delivery_info or {}).get("routing_key") or "", worker=request.hostname or "",
            )
            if not allowed:
                raise Ignore()  # the message is acknowledged and not delivered again

    def after_return(self, status: str, retval: Any, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        super().after_return(status, retval, task_id, args, kwargs, einfo)
        if self.acks_late and not self.request.is_eager:
            finish(task_id=task_id)

    def on_retry(self, exc: Exception, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        # A retry is a new message with the same id; after_return is not called for it.
        super().on_retry(exc, task_id, args, kwargs, einfo)
        if self.acks_late and not self.request.is_eager:
            finish(task_id=task_id)


def start(*, task_id: str, name: str, args: Any, kwargs: Any, queue: str = "", worker: str = "") -> bool:
    """Count one delivery of a task; False when it had its TASK_MAX_DELIVERIES and must not run.

    A database error lets the task run unguarded: its body then meets the same error and
    retries as it would without the guard, instead of being lost.
    """
    try:
        deliveries, flagged = _count_delivery(
            task_id=task_id, name=name, arguments=_arguments(args, kwargs), queue=queue, worker=worker
        )
    except DatabaseError:
        logger.warning("Task %s[%s]: its delivery could not be counted; it runs unguarded", name, task_id, exc_info=True)
        return True
    if deliveries <= settings.TASK_MAX_DELIVERIES:
        return True
    if not flagged:
        _flag(task_id=task_id, name=name, deliveries=deliveries)
    return False


def finish(*, task_id: str) -> None:
    """Forget a task that ended: it was not the one killing its worker. Flagged rows stay."""
    from .models import TaskDelivery

    table = connection.ops.quote_name(TaskDelivery._meta.db_table)
    using = f" USING {ASYNC_COMMIT}" if connection.vendor == "postgresql" else ""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}{using} WHERE task_id = %s AND flagged_at IS NULL", [task_id])
    except DatabaseError:
        # The row stays and counts one delivery too many if this task is ever delivered again.
        logger.warning("Task [%s]: its delivery count could not be cleared", task_id, exc_info=True)


def _arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """The call as JSON, to run it again; ids and small options, so short, or cut."""
    call = {"args": list(args or ()), "kwargs": dict(kwargs or {})}
    text = json.dumps(call, cls=DjangoJSONEncoder, ensure_ascii=False)
    if len(text) <= ARGUMENTS_LIMIT:
        return json.loads(text)
    return {"truncated": text[:ARGUMENTS_LIMIT]}


def _count_delivery(*, task_id: str, name: str, arguments: dict, queue: str, worker: str) -> tuple[int, bool]:
    """Insert the row or add one to it, in one statement: (deliveries, already flagged?).

    One round trip, atomic however many workers get the same message; SQL rather than the ORM,
    which has no "insert or increment".
    """
    from .models import TaskDelivery

    meta = TaskDelivery._meta
    now = timezone.now()
    values = {
        "task_id": task_id[:255], "name": name[:255], "arguments": arguments, "queue": queue[:255], "deliveries": 1,
        "worker": worker[:255], "first_started_at": now, "last_started_at": now,
    }
    params = [meta.get_field(column).get_db_prep_save(value, connection) for column, value in values.items()]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    placeholders = ", ".join(["%s"] * len(values))
    rows = f"SELECT {placeholders} FROM {ASYNC_COMMIT}" if connection.vendor == "postgresql" else f"VALUES ({placeholders})"
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(column) for column in values)}) {rows} "
        f"ON CONFLICT (task_id) DO UPDATE SET deliveries = {table}.deliveries + 1, "
        "last_started_at = EXCLUDED.last_started_at, worker = EXCLUDED.worker "
        "RETURNING deliveries, flagged_at"  # not "flagged_at IS NOT NULL": SQLite 3.40 gets it wrong
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        deliveries, flagged_at = cursor.fetchone()
    return deliveries, flagged_at is not None


def _flag(*, task_id: str, name: str, deliveries: int) -> None:
    """Flag the row and tell the administrators, once however many deliveries get here."""
    from .models import TaskDelivery
    from .notifications import administrators, in_default_language, notify

    with transaction.atomic():
        if not TaskDelivery.objects.filter(task_id=task_id, flagged_at=None).update(flagged_at=timezone.now()):
            return  # another delivery got there first
        text = in_default_language(
            _(
                "The task %(name)s was delivered %(count)d times and its worker stopped each time, so it will "
                "not run again by itself. See Flagged tasks in the administration."
            ),
            name=name, count=deliveries,
        )
        notify(recipients=administrators(), kind=NOTIFICATION_KIND, text=text)
    # Ids only: the arguments may one day carry more than ids, and they are in the row.
    logger.error(
        "Task %s[%s] was delivered %d times and its worker died each time; not run again, flagged for an administrator",
        name, task_id, deliveries,
    )


def resolve(*, deliveries: QuerySet[TaskDelivery], user: AbstractBaseUser) -> int:
    """Mark flagged tasks as dealt with (the cause fixed, or the work done by hand)."""
    return deliveries.filter(flagged_at__isnull=False, resolved_at=None).update(
        resolved_at=timezone.now(), resolved_by=user
    )


def run_again(*, delivery: TaskDelivery) -> None:
    """Queue a flagged task again, with its arguments, to its queue and under its id.

    The row goes first, so the new delivery counts from one; if the broker refuses the
    message, the row comes back, still flagged. DomainError when the arguments were cut.
    """
    from .models import TaskDelivery

    call = delivery.arguments
    if "truncated" in call:
        raise DomainError("arguments_truncated", str(_("Its arguments were too long to keep; it cannot run again.")))
    if not TaskDelivery.objects.filter(pk=delivery.pk).delete()[0]:
        return  # someone else ran it again meanwhile
    try:
        current_app.send_task(
            delivery.name, args=call.get("args", []), kwargs=call.get("kwargs", {}), task_id=delivery.task_id,
            queue=delivery.queue or None,
        )
    except Exception:
        delivery.save(force_insert=True)
        raise


def forget_stale(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget unflagged deliveries older than `older_than`: tasks whose worker died and that never
    came back (revoked, their queue purged, a beat task expired before another worker took it).
    Nothing else removes them. Returns how many."""
    from .models import TaskDelivery

    cutoff = timezone.now() - older_than
    return TaskDelivery.objects.filter(flagged_at__isnull=True, last_started_at__lt=cutoff).delete()[0]
