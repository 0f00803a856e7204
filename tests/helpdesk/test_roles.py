from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from helpdesk import roles

pytestmark = pytest.mark.django_db


def test_the_migration_creates_every_role():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ALL)


@pytest.mark.parametrize(
    ("persona", "allowed", "refused"),
    [
        ("alice", ["tickets.change_ticket", "tickets.add_message", "helpdesk.view_customer_pii"], ["helpdesk.change_agent", "tickets.delete_ticket"]),
        ("lena", ["tickets.change_ticket", "helpdesk.change_agent"], ["tickets.delete_ticket", "auth.add_user"]),
        ("iris", ["tickets.view_ticket", "tickets.view_message"], ["tickets.change_ticket", "tickets.add_message", "helpdesk.view_customer_pii"]),
        ("tom", ["tickets.view_ticket"], ["tickets.change_ticket", "helpdesk.view_customer_pii"]),
        ("ada", ["tickets.delete_ticket", "auth.add_user", "helpdesk.view_customer_pii"], []),
        ("olga", [], ["tickets.view_ticket"]),
    ],
)
def test_each_role_holds_its_permissions(persona, allowed, refused, request):
    user = request.getfixturevalue(persona)
    user = getattr(user, "user", user)
    assert all(user.has_perm(p) for p in allowed)
    assert not any(user.has_perm(p) for p in refused)


def test_the_chinese_catalog_is_complete_and_compiled():
    """Every string the code marks for translation has a zh-hans translation in the .mo."""
    from pathlib import Path

    from django.conf import settings
    from django.utils import translation

    po = Path(settings.BASE_DIR, "locale", "zh_Hans", "LC_MESSAGES", "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in po
    msgids, context = [], None  # (context, msgid): a string with a msgctxt is looked up with it
    for line in po.splitlines():
        if line.startswith('msgctxt "'):
            context = line[9:-1]
        elif line.startswith('msgid "') and line != 'msgid ""':
            msgids.append((context, line[7:-1]))
            context = None
    assert len(msgids) > 100
    with translation.override("zh-hans"):
        untranslated = [
            m for c, m in msgids
            if "\\" not in m and (translation.pgettext(c, m) if c else translation.gettext(m)) == m
        ]
    same_in_chinese = {"VIP", "URL", "SLA", "CSV", "JSON Lines"}
    assert set(untranslated) <= same_in_chinese
