from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HelpdeskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "helpdesk"
    verbose_name = _("Organisation")

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the app's Celery tasks by name (helpdesk.extensions.task_named)
