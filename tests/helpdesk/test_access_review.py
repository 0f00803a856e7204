"""The access review (helpdesk.access_review, /admin/auth/user/access-review/): administrators
see who can reach the helpdesk, with stale logins, superusers, permissions outside roles and
unused API keys flagged."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import translation

from helpdesk import roles
from helpdesk.access_review import (
    DIRECT_PERMISSIONS,
    STALE_LOGIN,
    SUPERUSER,
    UNUSED_KEY,
    access_review,
    remind_access_review,
)
from helpdesk.api_keys import create_api_key, revoke_api_key
from helpdesk.models import Notification

from ..factories import AgentFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 30, 4, 0, tzinfo=timezone.utc)  # before the personas joined (real time)
PAGE = "admin:access-review"


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def people(db):
    """Staff in each state the review tells apart, at NOW."""
    made = {
        "fresh": UserFactory(username="fresh", date_joined=days_ago(400), last_login=days_ago(3)),
        "idle": UserFactory(username="idle", date_joined=days_ago(400), last_login=days_ago(91)),
        "just_idle": UserFactory(username="just_idle", date_joined=days_ago(400), last_login=days_ago(89)),
        "never_old": UserFactory(username="never_old", date_joined=days_ago(120), last_login=None),
        "never_new": UserFactory(username="never_new", date_joined=days_ago(10), last_login=None),
        "root": UserFactory(username="root", is_superuser=True, date_joined=days_ago(400), last_login=days_ago(1)),
        "granted": UserFactory(username="granted", date_joined=days_ago(400), last_login=days_ago(1)),
        "gone": UserFactory(username="gone", is_active=False, date_joined=days_ago(400), last_login=days_ago(300)),
        "customer_side": UserFactory(username="not_staff", is_staff=False, date_joined=days_ago(400)),
    }
    made["granted"].user_permissions.add(Permission.objects.get(codename="delete_ticket"))
    made["granted"].groups.add(Group.objects.get(name=roles.AGENT))
    return made


def rows_by_name(review) -> dict:
    return {row.user.username: row for row in review.users}


def test_flags_follow_logins_superusers_and_direct_permissions(people):
    review = access_review(now=NOW, stale_days=90)
    rows = rows_by_name(review)
    assert set(rows) == {"fresh", "idle", "just_idle", "never_old", "never_new", "root", "granted"}  # who can sign in
    assert rows["fresh"].flags == () and rows["fresh"].days_since_login == 3
    assert rows["idle"].flags == (STALE_LOGIN,) and rows["idle"].days_since_login == 91
    assert rows["just_idle"].flags == ()
    assert rows["never_old"].flags == (STALE_LOGIN,) and rows["never_old"].days_since_login is None
    assert rows["never_new"].flags == ()
    assert rows["root"].flags == (SUPERUSER,)
    assert rows["granted"].flags == (DIRECT_PERMISSIONS,)
    assert rows["granted"].direct_permissions == ("tickets.delete_ticket",) and rows["granted"].roles == (roles.AGENT,)


def test_the_stale_period_is_the_setting(people, settings):
    settings.ACCESS_REVIEW_STALE_DAYS = 30
    with time_machine.travel(NOW, tick=False):
        rows = rows_by_name(access_review())
    assert STALE_LOGIN in rows["just_idle"].flags and rows["fresh"].flags == ()


def test_roles_and_teams_of_agents_are_listed(alice, lena, ada):
    other = TeamFactory(name="Billing")
    lena.teams.add(other)
    rows = rows_by_name(access_review(now=NOW))
    assert rows["alice"].roles == (roles.AGENT,) and rows["alice"].teams == ("Support",)
    assert rows["lena"].roles == (roles.TEAM_LEAD,) and rows["lena"].teams == ("Billing", "Support")
    assert rows["ada"].roles == (roles.ADMINISTRATOR,) and rows["ada"].teams == ()


def test_an_unused_key_is_flagged_and_a_recently_used_or_revoked_one_is_not(alice):
    with time_machine.travel(days_ago(200), tick=False):
        unused, _plain = create_api_key(name="old-shop", scope="write")
        used, _plain = create_api_key(name="crm", scope="read")
        revoked, _plain = create_api_key(name="retired", scope="read")
        revoke_api_key(api_key=revoked)
        never, _plain = create_api_key(name="never-used", scope="read")
    with time_machine.travel(days_ago(100), tick=False):
        unused.last_used_at = days_ago(100)
        unused.save(update_fields=["last_used_at"])
    used.last_used_at = days_ago(2)
    used.save(update_fields=["last_used_at"])
    with time_machine.travel(days_ago(5), tick=False):
        young, _plain = create_api_key(name="new-shop", scope="read", user=alice.user)  # a personal key, never used
    review = access_review(now=NOW, stale_days=90)
    flags = {row.key.name: row.flags for row in review.keys}
    assert flags == {"old-shop": (UNUSED_KEY,), "crm": (), "retired": (), "never-used": (UNUSED_KEY,), "new-shop": ()}
    [crm] = [row for row in review.keys if row.key.name == "crm"]
    assert crm.roles == (roles.API_CLIENT,) and crm.days_since_use == 2
    # Integration users are listed for their working keys; not the one whose only key is revoked.
    users = rows_by_name(review)
    assert {"api-old-shop", "api-crm", "api-never-used"} <= set(users) and "api-retired" not in users
    assert users["api-crm"].flags == ()  # never signed in, but not staff: its key is what is reviewed
    counts = review.counts()
    assert (counts["keys"], counts["active_keys"], counts["unused_keys"], counts["flagged_keys"]) == (5, 4, 2, 2)


@pytest.mark.parametrize("persona", ["alice", "lena", "iris", "tom", "olga"])
def test_only_administrators_see_the_review(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(getattr(user, "user", user))
    for name in (PAGE, "admin:access-review-users-csv", "admin:access-review-keys-csv"):
        assert client.get(reverse(name)).status_code == 403


def test_an_anonymous_caller_is_sent_to_the_login_page(client, db):
    response = client.get(reverse(PAGE))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_the_administrator_sees_counts_flags_and_links(client, ada, people, english):
    client.force_login(ada)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse(PAGE))
    assert page.status_code == 200 and not ada.is_superuser
    counts = page.context["counts"]
    # fresh idle just_idle never_old never_new root granted + ada (ada signed in just now)
    assert (counts["users"], counts["flagged_users"], counts["stale_users"], counts["superusers"]) == (8, 4, 2, 1)
    text = page.content.decode()
    assert reverse("admin:auth_user_change", args=[people["idle"].pk]) in text
    assert "No login for 90 days" in text and "Permissions outside roles" in text and "never" in text
    with time_machine.travel(NOW, tick=False):
        flagged = client.get(reverse(PAGE) + "?flagged=1")
    shown = {row.user.username for row, _labels in flagged.context["users"]}
    assert shown == {"idle", "never_old", "root", "granted"}
    assert flagged.context["counts"] == counts  # the counts are of everyone
    assert "?flagged=1" in flagged.context["users_csv_url"]


def test_the_user_list_links_to_the_review_for_administrators_only(client, ada, lena):
    client.force_login(ada)
    assert reverse(PAGE) in client.get(reverse("admin:auth_user_changelist")).content.decode()
    lena.user.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(lena.user)
    listing = client.get(reverse("admin:auth_user_changelist"))
    assert listing.status_code == 200 and reverse(PAGE) not in listing.content.decode()


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_users_csv_has_the_rows_and_their_flag_columns(client, ada, people, english):
    people["root"].username = "=cmd|' /C calc'!A0"  # a formula typed as a username stays text
    people["root"].save()
    client.force_login(ada)
    with time_machine.travel(NOW, tick=False):
        header, *rows = read_csv(client.get(reverse("admin:access-review-users-csv") + "?flagged=1"))
    assert header[:3] == ["Username", "Name", "Roles"]
    assert header[-3:] == ["Flag: No login for 90 days", "Flag: Superuser", "Flag: Permissions outside roles"]
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_name) == {"idle", "never_old", "'=cmd|' /C calc'!A0", "granted"}
    assert by_name["idle"]["Flag: No login for 90 days"] == "yes" and by_name["idle"]["Days since login"] == "91"
    assert by_name["never_old"]["Last login"] == "never" and by_name["never_old"]["Days since login"] == ""
    assert by_name["granted"]["Permissions granted directly"] == "tickets.delete_ticket"
    assert by_name["granted"]["Flag: Permissions outside roles"] == "yes"
    assert by_name["granted"]["Flag: Superuser"] == "no" and by_name["granted"]["Roles"] == roles.AGENT
    assert by_name["'=cmd|' /C calc'!A0"]["Flag: Superuser"] == "yes"


def test_the_keys_csv_has_the_keys_and_the_unused_flag(client, ada, english):
    with time_machine.travel(days_ago(120), tick=False):
        create_api_key(name="old-shop", scope="write")
    create_api_key(name="new-shop", scope="read", user=ada)
    client.force_login(ada)
    with time_machine.travel(NOW, tick=False):
        header, *rows = read_csv(client.get(reverse("admin:access-review-keys-csv")))
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_name["old-shop"]["Flag: Unused for 90 days"] == "yes" and by_name["old-shop"]["Last used"] == "never"
    assert by_name["old-shop"]["Acts as user"] == "api-old-shop" and by_name["old-shop"]["Roles"] == roles.API_CLIENT
    assert by_name["new-shop"]["Flag: Unused for 90 days"] == "no" and by_name["new-shop"]["Acts as user"] == "ada"


def populate(count: int) -> None:
    """`count` agents with a role, a team and a direct permission, each with a key."""
    team = TeamFactory(name="Queue")
    group = Group.objects.get(name=roles.AGENT)
    permission = Permission.objects.get(codename="delete_ticket")
    for number in range(count):
        agent = AgentFactory(user=UserFactory(username=f"agent{number:03}"), teams=[team])
        agent.user.groups.add(group)
        agent.user.user_permissions.add(permission)
        create_api_key(name=f"key{number:03}", scope="read", user=agent.user)


@pytest.mark.parametrize("count", [3, 30])
def test_the_review_costs_the_same_queries_for_3_or_30_users(count, django_assert_num_queries):
    populate(count)
    with django_assert_num_queries(6):  # users, groups, permissions, teams; keys, their users' groups
        review = access_review(now=NOW)
    assert len(review.users) == count and len(review.keys) == count


@pytest.mark.parametrize("count", [3, 30])
def test_the_page_and_files_cost_the_same_queries_for_3_or_30_users(count, client, ada, django_assert_num_queries):
    populate(count)
    client.force_login(ada)
    # Session, user, roles; the review's 6; the page's admin menu reads ada's permissions (2).
    for name, queries in ((PAGE, 11), ("admin:access-review-users-csv", 9), ("admin:access-review-keys-csv", 9)):
        with django_assert_num_queries(queries):
            assert client.get(reverse(name)).status_code == 200


def test_the_monthly_reminder_tells_each_administrator_once_a_month(ada, people, mailoutbox, django_capture_on_commit_callbacks, settings):
    ada.email = "ada@example.com"
    ada.save()
    settings.LANGUAGE_CODE = "en"
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        told = remind_access_review()
    # Administrators: ada and root (a superuser).
    assert told == 2
    [note] = Notification.objects.filter(recipient=ada, kind="access_review")
    assert note.text.startswith("Monthly access review: 4 users and 0 API keys are flagged.")
    assert note.text.endswith(reverse(PAGE))
    assert [mail.to for mail in mailoutbox] == [["ada@example.com"]]
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert remind_access_review() == 0  # run twice: nothing more
    with time_machine.travel(datetime(2025, 6, 30, 16, 0, tzinfo=timezone.utc), tick=False):
        assert remind_access_review() == 2  # 00:00 on 1 July in Shanghai: a new month
