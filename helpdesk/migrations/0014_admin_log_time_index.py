"""Index Django's admin log by time, newest first: the audit page pages through it that way."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0013_webhook_delivery_claims"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS helpdesk_admin_log_time_idx ON django_admin_log (action_time DESC, id DESC)",
            "DROP INDEX IF EXISTS helpdesk_admin_log_time_idx",
        )
    ]
