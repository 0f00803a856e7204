"""The API Client role: the users that integrations' API keys act as. Data only; reversible."""

from django.db import migrations

from ._permissions import make_permissions

PERMISSIONS = [
    "helpdesk.view_team",
    "helpdesk.view_agent",
    "helpdesk.view_skill",
    "helpdesk.view_tag",
    "helpdesk.add_tag",
    "helpdesk.view_customer",
    "helpdesk.add_customer",
    "helpdesk.change_customer",
    "helpdesk.view_customer_pii",
    "helpdesk.view_customeridentity",
    "helpdesk.add_customeridentity",
    "tickets.view_category",
    "tickets.view_ticket",
    "tickets.add_ticket",
    "tickets.change_ticket",
    "tickets.view_message",
    "tickets.add_message",
    "tickets.view_csat",
    "tickets.add_csat",
    "tickets.ingest_messages",
    "tickets.import_tickets",
]


def create_role(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="API Client")
    group.permissions.set(
        Permission.objects.get(content_type__app_label=code.split(".")[0], codename=code.split(".")[1])
        for code in PERMISSIONS
    )
    # Administrators hold every permission, including the new models'.
    admin = Group.objects.filter(name="Administrator").first()
    if admin is not None:
        admin.permissions.add(
            *Permission.objects.filter(content_type__app_label__in=["helpdesk", "tickets", "qa", "knowledge", "auth"])
        )


def delete_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="API Client").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0003_api_keys_webhooks_customer_external_id"),
        ("helpdesk", "0002_roles"),
        ("tickets", "0004_history_updated_at_conversation_permissions"),
    ]

    operations = [migrations.RunPython(create_role, delete_role)]
