"""Team leads resolve disputes; agents may read theirs."""

from django.db import migrations

from helpdesk.migrations._permissions import make_permissions


def grant(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    roles = {"Team Lead": ["view_dispute", "change_dispute"], "Agent": ["view_dispute"], "Trainer": ["view_dispute"],
             "API Client": ["view_dispute"], "Administrator": ["view_dispute", "change_dispute", "add_dispute", "delete_dispute"]}
    for name, codenames in roles.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="qa", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [("qa", "0003_disputes")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
