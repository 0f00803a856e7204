"""Ship the cn-workweek and 24x7 calendars, with China's statutory dates; let roles read calendars."""

from datetime import time

from django.db import migrations

from helpdesk.holidays import statutory_dates

from ._permissions import make_permissions

READERS = ["Agent", "Team Lead", "QA Inspector", "Trainer", "API Client", "Administrator"]


def create_calendars(apps, schema_editor):
    Calendar = apps.get_model("helpdesk", "BusinessCalendar")
    Hours = apps.get_model("helpdesk", "WorkingHours")
    Date = apps.get_model("helpdesk", "CalendarDate")
    workweek, created = Calendar.objects.get_or_create(
        slug="cn-workweek", defaults={"name": "中国工作日 (周一至周五 09:00-18:00)", "time_zone": "Asia/Shanghai", "holiday_region": "CN"}
    )
    if created:
        Hours.objects.bulk_create(Hours(calendar=workweek, weekday=day, start=time(9), end=time(18)) for day in range(5))
        Date.objects.bulk_create(
            Date(calendar=workweek, date=day, kind="working" if working else "closed", name=name, source="statutory")
            for day, (working, name) in sorted(statutory_dates("CN").items())
        )
    always, created = Calendar.objects.get_or_create(
        slug="24x7", defaults={"name": "全天候 (24x7)", "time_zone": "Asia/Shanghai", "workday_hours": "00:00-24:00"}
    )
    if created:
        Hours.objects.bulk_create(Hours(calendar=always, weekday=day, start=time(0), end=time(0)) for day in range(7))


def grant_view(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="helpdesk", codename="view_businesscalendar")
    for group in Group.objects.filter(name__in=READERS):
        group.permissions.add(view)
    admin = Group.objects.filter(name="Administrator").first()
    if admin is not None:
        admin.permissions.add(*Permission.objects.filter(content_type__app_label="helpdesk"))


class Migration(migrations.Migration):
    dependencies = [("helpdesk", "0005_business_calendars"), ("helpdesk", "0004_api_client_role")]

    operations = [
        migrations.RunPython(create_calendars, migrations.RunPython.noop),
        migrations.RunPython(grant_view, migrations.RunPython.noop),
    ]
