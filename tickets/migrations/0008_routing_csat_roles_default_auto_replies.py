"""Who may see and change routing, automatic replies, ratings and complaints; the standard replies."""

from django.db import migrations

from helpdesk.migrations._permissions import make_permissions

ROLES = {
    "Administrator": [
        f"{verb}_{model}"
        for model in ("routingrule", "autoreplyrule", "complaint", "csat")
        for verb in ("view", "add", "change", "delete")
    ] + ["view_autoreply", "view_csatsurvey"],
    "Team Lead": [
        "view_routingrule", "view_autoreplyrule", "view_autoreply", "view_complaint", "change_complaint",
        "view_csat", "view_csatsurvey",
    ],
    "Agent": ["view_csat", "view_autoreply"],
    "QA Inspector": ["view_csat", "view_complaint"],
    "Trainer": ["view_csat", "view_complaint"],
    "API Client": ["view_csat", "add_csat", "view_complaint"],
}

REPLIES = [
    ("acknowledgement", "zh-hans", "首次响应（中文）",
     "您好{customer_name}，我们已收到您的消息（工单 {ticket_ref}），客服将在 {expected_reply_time} 前回复您。"),
    ("acknowledgement", "en", "First acknowledgement (English)",
     "Hello {customer_name}, we have your message (ticket {ticket_ref}). An agent will reply by {expected_reply_time}."),
    ("outside_hours", "zh-hans", "非工作时间（中文）",
     "您好{customer_name}，现在是非工作时间，我们将在 {expected_reply_time} 前回复您，感谢您的耐心等待。"),
    ("outside_hours", "en", "Outside business hours (English)",
     "Hello {customer_name}, we are closed now. We will reply by {expected_reply_time}. Thank you for your patience."),
    ("holiday", "zh-hans", "节假日（中文）",
     "您好{customer_name}，节假日期间客服暂停服务，我们将在 {expected_reply_time} 前回复您。"),
    ("holiday", "en", "Holiday (English)",
     "Hello {customer_name}, we are closed for the holiday. We will reply by {expected_reply_time}."),
]


def forwards(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="tickets", codename__in=codenames))
    calendar = apps.get_model("helpdesk", "BusinessCalendar").objects.filter(slug="cn-workweek").first()
    if calendar is None:
        return
    Rule = apps.get_model("tickets", "AutoReplyRule")
    for trigger, language, name, body in REPLIES:
        Rule.objects.get_or_create(
            trigger=trigger, language=language, name=name,
            # Chat answers within seconds: an acknowledgement there is noise, by email it is expected.
            defaults={"calendar": calendar, "body": body, "channels": ["email"] if trigger == "acknowledgement" else []},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0007_routing_autoreplies_csat"),
        ("helpdesk", "0006_default_calendars"),
        ("qa", "0004_dispute_permissions"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
