"""Administrators run calibrations; trainers read them."""

from django.db import migrations

from helpdesk.migrations._permissions import make_permissions


def grant(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="Administrator").first()
    if admin is not None:
        admin.permissions.add(*Permission.objects.filter(content_type__app_label="qa"))
    trainer = Group.objects.filter(name="Trainer").first()
    if trainer is not None:
        trainer.permissions.add(*Permission.objects.filter(content_type__app_label="qa", codename="view_calibration"))


class Migration(migrations.Migration):
    dependencies = [("qa", "0005_calibration")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
