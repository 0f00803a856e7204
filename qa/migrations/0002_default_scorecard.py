"""Ship the default scorecard of our QA standard, a 5% daily sample of every team, and QA permissions."""

from decimal import Decimal

from django.db import migrations

from helpdesk.migrations._permissions import make_permissions

# section, code, title, weight, critical, allows N/A
CRITERIA = [
    ("响应礼仪", "greeting", "问候语规范", "1", False, False),
    ("响应礼仪", "closing", "结束语规范", "1", False, False),
    ("响应礼仪", "polite_language", "使用礼貌用语", "1", False, False),
    ("问题理解", "understanding", "准确理解客户问题", "2", False, False),
    ("信息完整性", "completeness", "提供的信息完整、准确", "2", False, False),
    ("解决方案", "solution", "解决方案合理、有效", "3", False, False),
    ("服务态度", "patience", "耐心", "1", False, False),
    ("服务态度", "professionalism", "专业", "1", False, False),
    ("服务态度", "initiative", "主动服务", "1", False, True),
    ("系统使用", "classification", "工单分类正确", "1", False, False),
    ("系统使用", "ticket_fields", "工单字段填写完整", "1", False, False),
    ("系统使用", "notes", "内部备注规范", "1", False, True),
    ("合规", "privacy", "保护客户隐私", "2", True, False),
    ("合规", "identity_check", "账户变更前核验身份", "2", True, True),
]


def create_defaults(apps, schema_editor):
    Scorecard = apps.get_model("qa", "Scorecard")
    Version = apps.get_model("qa", "ScorecardVersion")
    Criterion = apps.get_model("qa", "Criterion")
    Scope = apps.get_model("qa", "SampleScope")
    scorecard, created = Scorecard.objects.get_or_create(slug="standard", defaults={"name": "客服质检标准评分表"})
    if created:
        version = Version.objects.create(scorecard=scorecard, number=1)
        Criterion.objects.bulk_create(
            Criterion(version=version, section=section, code=code, title=title, weight=Decimal(weight), max_points=2,
                      critical=critical, allows_na=allows_na, position=position)
            for position, (section, code, title, weight, critical, allows_na) in enumerate(CRITERIA)
        )
    if not Scope.objects.exists():
        Scope.objects.create(team=None, rate=Decimal("0.05"), scorecard=scorecard)


def grant(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    roles = {
        "QA Inspector": ["view_review", "change_review", "view_scorecard", "view_samplerun", "view_criterionscore", "add_criterionscore"],
        "Trainer": ["view_review", "view_scorecard", "view_samplerun", "view_criterionscore"],
        "Team Lead": ["view_review", "view_scorecard", "view_criterionscore"],
        "Agent": ["view_review", "view_criterionscore"],
        "API Client": ["view_review", "view_samplerun", "view_scorecard", "view_criterionscore"],
    }
    for name, codenames in roles.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*Permission.objects.filter(content_type__app_label="qa", codename__in=codenames))
    admin = Group.objects.filter(name="Administrator").first()
    if admin is not None:
        admin.permissions.add(*Permission.objects.filter(content_type__app_label="qa"))


class Migration(migrations.Migration):
    dependencies = [("qa", "0001_scorecards_samples_reviews"), ("helpdesk", "0004_api_client_role")]

    operations = [
        migrations.RunPython(create_defaults, migrations.RunPython.noop),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
