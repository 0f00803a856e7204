from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tickets"
    verbose_name = _("Tickets")

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the app's Celery tasks by name (helpdesk.extensions.task_named)
        from helpdesk.services import CALENDAR_CHANGED

        from .sla_reschedule import queue_calendar_reschedule

        if queue_calendar_reschedule not in CALENDAR_CHANGED:
            CALENDAR_CHANGED.append(queue_calendar_reschedule)  # deadlines follow an edited calendar
