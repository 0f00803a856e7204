import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task gets the delivery guard: one that keeps killing its worker is stopped and flagged.
app = Celery("helpdesk", task_cls="helpdesk.task_guard:GuardedTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
