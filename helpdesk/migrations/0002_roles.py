"""Create the role groups with their permissions. Data only; reversible."""

from django.db import migrations

from ._permissions import make_permissions

VIEW_ORG = [
    "helpdesk.view_team",
    "helpdesk.view_agent",
    "helpdesk.view_skill",
    "helpdesk.view_tag",
    "tickets.view_category",
]
WORK_TICKETS = [
    "tickets.view_ticket",
    "tickets.add_ticket",
    "tickets.change_ticket",
    "tickets.view_message",
    "tickets.add_message",
    "helpdesk.view_customer",
    "helpdesk.add_customer",
    "helpdesk.change_customer",
    "helpdesk.view_customer_pii",
    "helpdesk.view_customeridentity",
    "helpdesk.add_customeridentity",
    "helpdesk.add_tag",
]
# Inspectors and trainers read conversations with the customer masked: no customer pages.
READ_CONVERSATIONS = ["tickets.view_ticket", "tickets.view_message"]

ROLES = {
    "Agent": VIEW_ORG + WORK_TICKETS,
    "Team Lead": VIEW_ORG + WORK_TICKETS + ["helpdesk.change_agent", "helpdesk.change_tag"],
    "QA Inspector": VIEW_ORG + READ_CONVERSATIONS,
    "Trainer": VIEW_ORG + READ_CONVERSATIONS,
    "Administrator": "__all__",
}


def create_roles(apps, schema_editor):
    make_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if codes == "__all__":
            permissions = Permission.objects.filter(
                content_type__app_label__in=["helpdesk", "tickets", "qa", "knowledge", "auth"]
            )
        else:
            permissions = []
            for code in codes:
                app_label, codename = code.split(".")
                permissions.append(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
        group.permissions.set(permissions)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0001_initial"),
        ("tickets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
