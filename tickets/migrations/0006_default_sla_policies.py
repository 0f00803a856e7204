"""Ship our service standard as SLA policies, and make account-security categories urgent.

First responses by channel (calendar time): web chat 15 s, in-app chat 20 s, WeChat 30 s,
Weibo and Douyin DMs 1 h, email 12 h (VIP customers 4 h), other channels 1 h. Resolution by
priority in cn-workweek business time: urgent 4 h, high 1 day, normal 3 days, low 5 days.
"""

from django.db import migrations

from helpdesk.migrations._permissions import make_permissions

HOUR = 3600
DAY = 9 * HOUR  # one cn-workweek business day, 09:00-18:00
RESOLUTION = {"urgent": 4 * HOUR, "high": DAY, "normal": 3 * DAY, "low": 5 * DAY}
POLICIES = [
    # name, channels, tiers, first and next response in seconds
    ("邮件 · VIP 客户", ["email"], ["vip"], 4 * HOUR),
    ("邮件", ["email"], [], 12 * HOUR),
    ("网页在线客服", ["web_chat"], [], 15),
    ("App 内客服", ["app_chat"], [], 20),
    ("微信", ["wechat"], [], 30),
    ("微博、抖音私信", ["weibo", "douyin"], [], HOUR),
    ("其他渠道", [], [], HOUR),
]
SECURITY = [("account_stolen", "账号被盗", "Stolen account"), ("abnormal_login", "异常登录", "Abnormal sign-in")]


def create_policies(apps, schema_editor):
    Policy = apps.get_model("tickets", "SlaPolicy")
    Target = apps.get_model("tickets", "SlaTarget")
    Category = apps.get_model("tickets", "Category")
    Calendar = apps.get_model("helpdesk", "BusinessCalendar")
    security = Category.objects.filter(code="account_security").first()
    if security is not None:
        for position, (code, name, name_en) in enumerate(SECURITY):
            Category.objects.get_or_create(
                code=code, defaults={"name": name, "name_en": name_en, "parent": security, "position": position}
            )
        Category.objects.filter(code__in=["account_security", *(c for c, _, _ in SECURITY)]).update(minimum_priority="urgent")
    if Policy.objects.exists():
        return
    workweek = Calendar.objects.filter(slug="cn-workweek").first()
    for position, (name, channels, tiers, response) in enumerate(POLICIES):
        policy = Policy.objects.create(
            name=name, position=position * 10, channels=channels, tiers=tiers, calendar=workweek, pause_statuses=["pending"]
        )
        Target.objects.bulk_create(
            [
                Target(policy=policy, metric="first_response", priority="", seconds=response),
                Target(policy=policy, metric="next_response", priority="", seconds=response),
                *(
                    Target(policy=policy, metric="resolution", priority=priority, seconds=seconds, business_hours=workweek is not None)
                    for priority, seconds in RESOLUTION.items()
                ),
            ]
        )


def grant(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    readers = {
        "Agent": ["view_slapolicy", "view_slaclock", "view_escalation", "add_escalation"],
        "Team Lead": ["view_slapolicy", "view_slaclock", "view_escalation", "add_escalation", "change_escalation"],
        "API Client": ["view_slapolicy", "view_slaclock", "view_escalation", "add_escalation", "change_escalation"],
    }
    for name, codenames in readers.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="tickets", codename__in=codenames))
    for name in ["Agent", "Team Lead", "QA Inspector", "Trainer", "API Client"]:
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="helpdesk", codename="view_notification"))
    admin = Group.objects.filter(name="Administrator").first()
    if admin is not None:
        admin.permissions.add(*Permission.objects.filter(content_type__app_label__in=["tickets", "helpdesk"]))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0005_sla_policies_clocks_escalations"),
        ("helpdesk", "0007_team_manager_notifications"),
        ("helpdesk", "0006_default_calendars"),
    ]

    operations = [
        migrations.RunPython(create_policies, migrations.RunPython.noop),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
