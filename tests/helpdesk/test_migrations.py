from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from helpdesk import roles
from tickets.models import Category


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_roles_migration_reverses_and_reapplies():
    call_command("migrate", "helpdesk", "0001", verbosity=0)
    assert not Group.objects.filter(name__in=roles.ALL).exists()
    call_command("migrate", verbosity=0)  # the tickets migrations that depend on these come back too
    assert Group.objects.get(name=roles.AGENT).permissions.filter(codename="change_ticket").exists()


@pytest.mark.django_db
def test_the_default_category_tree_ships():
    after_sales = Category.objects.get(code="after_sales")
    assert after_sales.name == "售后服务"
    assert set(after_sales.children.values_list("code", flat=True)) >= {"returns", "delivery"}
    assert Category.objects.get(code="account_security").parent.code == "account"
    assert set(Category.objects.filter(parent=None).values_list("code", flat=True)) == {
        "product", "after_sales", "account", "complaint", "promotion"
    }
