"""TaskDelivery: the delivery count of late-acknowledged tasks (helpdesk.task_guard); administrators
see, resolve and re-run the flagged ones.

One migration on purpose: the grant needs the table's permissions, and both reverse together.
"""

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from ._permissions import make_permissions

# All four, as a fresh database gets them from the older "everything in helpdesk" grants; the
# admin offers no add page anyway.
CODENAMES = ["view_taskdelivery", "add_taskdelivery", "change_taskdelivery", "delete_taskdelivery"]


def grant(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    administrators = Group.objects.filter(name="Administrator").first()
    if administrators is not None:
        administrators.permissions.add(
            *Permission.objects.filter(content_type__app_label="helpdesk", codename__in=CODENAMES)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    administrators = Group.objects.filter(name="Administrator").first()
    if administrators is not None:
        administrators.permissions.remove(
            *Permission.objects.filter(content_type__app_label="helpdesk", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0011_login_protection_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("task_id", models.CharField(max_length=255, unique=True, verbose_name="task id")),
                ("name", models.CharField(max_length=255, verbose_name="task")),
                (
                    "arguments",
                    models.JSONField(
                        blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder,
                        verbose_name="arguments",
                    ),
                ),
                ("queue", models.CharField(blank=True, max_length=255, verbose_name="queue")),
                ("deliveries", models.PositiveIntegerField(default=1, verbose_name="deliveries")),
                ("worker", models.CharField(blank=True, max_length=255, verbose_name="last worker")),
                ("first_started_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="first started")),
                ("last_started_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="last started")),
                ("flagged_at", models.DateTimeField(blank=True, db_index=True, null=True, verbose_name="flagged")),
                ("resolved_at", models.DateTimeField(blank=True, null=True, verbose_name="resolved")),
                (
                    "resolved_by",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                        to=settings.AUTH_USER_MODEL, verbose_name="resolved by",
                    ),
                ),
            ],
            options={
                "verbose_name": "flagged task",
                "verbose_name_plural": "flagged tasks",
                "ordering": ["-flagged_at", "-id"],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
