"""Every form a browser posts needs the CSRF token: without it 403, with it the view answers.

The browser's routes are read from the root URL resolver (tests/security/routes.py), so a form
view added tomorrow is checked tomorrow: every route outside /api/ (token clients; the API's
session users are checked by DRF, below) and every admin route, including the custom views
ModelAdmins add in get_urls(). With the token, a representative set really does its work:
the login page, a change form, an action, custom admin views, the CSAT survey.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from helpdesk.models import BusinessCalendar
from qa.models import Review
from tickets import csat
from tickets.models import Csat, CsatSurvey

from ..factories import TicketFactory
from .routes import Route, example_path, methods, routes
from .test_url_auth import filler
from .world import World

pytestmark = pytest.mark.django_db
SECRET = "k" * 32  # a CSRF secret as the cookie holds it; the form field may carry it as is


def browser_posted(route: Route) -> bool:
    """Routes a browser may POST to: all but the token API (its session callers: DRF's check)."""
    return not route.pattern.startswith("api/v1/") and "post" in methods(route)


def csrf_client(user=None) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def with_token(client: Client) -> dict:
    client.cookies[settings.CSRF_COOKIE_NAME] = SECRET
    return {"csrfmiddlewaretoken": SECRET}


def unprotected(world: World, user, select: Callable[[Route], bool]) -> tuple[list[str], int]:
    """Routes that took a POST without the token (anything but 403), and how many were asked."""
    client = csrf_client(user)
    fill = filler(world)
    open_doors, asked = [], 0
    for route in routes():
        if not select(route):
            continue
        url = example_path(route, fill)
        asked += 1
        response = client.post(url, {"field": "value"})
        if response.status_code != 403 or b"CSRF" not in response.content:
            open_doors.append(f"{route.label}: POST {url} without a token -> {response.status_code}")
    return open_doors, asked


def test_every_browser_view_outside_the_admin_refuses_a_post_without_the_token(world):
    doors, asked = unprotected(world, None, lambda r: browser_posted(r) and not r.pattern.startswith("admin/"))
    assert asked >= 3, f"only {asked} routes: the walk lost its way"  # the survey, health, the root redirect ...
    assert not doors, "\n".join(doors)


def test_every_admin_route_refuses_a_post_without_the_token(world):
    doors, asked = unprotected(world, world.users["admin"], lambda r: browser_posted(r) and r.pattern.startswith("admin/"))
    assert asked > 150, f"only {asked} admin routes"
    assert not doors, "\n".join(doors)


def test_the_walk_covers_the_login_page_the_survey_and_the_custom_admin_views():
    names = {route.name for route in routes() if browser_posted(route)}
    assert {"admin:login", "csat-survey", "admin:qa_review_score", "admin:tickets_ticket_reply",
            "admin:helpdesk_businesscalendar_change", "admin:tickets_ticket_changelist"} <= names


# --- with the token, the same posts do their work ------------------------------------------------


def test_the_login_page_needs_the_token(world, settings):
    settings.AXES_ENABLED = False  # the lockout's own counting is tested in tests/helpdesk/test_login_protection.py
    user = world.users["admin"]
    user.set_password("pass-word-123")
    user.save()
    client = csrf_client()
    form = {"username": user.username, "password": "pass-word-123", "next": "/admin/"}
    assert client.post(reverse("admin:login"), form).status_code == 403
    response = client.post(reverse("admin:login"), {**form, **with_token(client)})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_the_survey_page_needs_the_token(world, django_capture_on_commit_callbacks):
    ticket = TicketFactory(status="solved", team=world.ours.team)
    survey = CsatSurvey.objects.create(ticket=ticket, expires_at=timezone.now() + timedelta(days=7))
    client = csrf_client()
    url = csat.survey_path(survey)
    assert client.post(url, {"stars": "5"}).status_code == 403
    assert not Csat.objects.filter(ticket=ticket).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"stars": "5", **with_token(client)})
    assert response.status_code in (200, 302) and Csat.objects.filter(ticket=ticket, stars=5).exists()


def test_a_change_form_and_an_action_need_the_token(world):
    calendar = BusinessCalendar.objects.get(slug="24x7")
    client = csrf_client(world.users["admin"])
    url = reverse("admin:helpdesk_businesscalendar_change", args=[calendar.pk])
    form = {
        "slug": calendar.slug, "name": "全天候", "time_zone": calendar.time_zone, "holiday_region": "",
        "workday_hours": calendar.workday_hours, "hours-TOTAL_FORMS": 0, "hours-INITIAL_FORMS": 0,
        "dates-TOTAL_FORMS": 0, "dates-INITIAL_FORMS": 0,
    }
    assert client.post(url, form).status_code == 403
    assert client.post(url, {**form, **with_token(client)}).status_code == 302
    calendar.refresh_from_db()
    assert calendar.name == "全天候"
    action = {"action": "sync_statutory", "_selected_action": [calendar.pk], "index": 0}
    changelist = reverse("admin:helpdesk_businesscalendar_changelist")
    assert client.post(changelist, action).status_code == 403
    assert client.post(changelist, {**action, **with_token(client)}).status_code == 302


def test_the_qa_scoring_page_needs_the_token(world):
    review = Review.objects.filter(status=Review.Status.ASSIGNED, inspector__isnull=False).select_related("inspector").first()
    client = csrf_client(review.inspector)
    url = reverse("admin:qa_review_score", args=[review.pk])
    form = {f"points-{c.code}": str(c.max_points) for c in review.scorecard_version.criteria.all()}
    assert client.post(url, form).status_code == 403
    assert client.post(url, {**form, **with_token(client)}).status_code == 302
    review.refresh_from_db()
    assert review.status == Review.Status.SUBMITTED


def test_the_api_refuses_a_session_callers_post_without_the_token_but_not_a_key(world, integration):
    client = csrf_client(world.users["admin"])
    url = reverse("ticket-list")
    assert client.post(url, {}, content_type="application/json").status_code == 403
    keyed = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {integration[1]}")
    assert keyed.post(url, {}, content_type="application/json").status_code == 400  # reached the serializer


# --- the walk catches a new form view that forgets the token ---------------------------------------


@csrf_exempt
def _careless_form(request):
    return HttpResponse("thanks")


urlpatterns = [path("feedback/", _careless_form, name="careless-form"), path("", include("config.urls"))]


def test_a_new_form_view_without_csrf_is_caught_and_named(world):
    with override_settings(ROOT_URLCONF=__name__):
        doors, asked = unprotected(world, None, lambda r: r.name in ("careless-form", "csat-survey"))
    assert asked == 2
    assert len(doors) == 1 and doors[0].startswith("careless-form [feedback/]"), doors
