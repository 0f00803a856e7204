"""Every URL the site serves, asked without credentials, is refused: 401, 403 or the admin's
login page. The exceptions are listed below by URL name, each with the reason it is public.

The routes come from the root URL resolver, so a view added tomorrow is checked tomorrow; its
arguments are filled with real objects, so a refusal is the view's and not a missing row's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path, reverse

from tickets.models import Ticket

from .routes import Route, example_path, methods, routes
from .world import World

pytestmark = pytest.mark.django_db

# Public on purpose, by URL name. Each must still answer without a 500 (/healthz may say 503:
# that is its answer when beat's heartbeat is missing, as it is in tests).
PUBLIC = {
    "healthz": "load balancers probe it; it reports statuses and an age, no data",
    "csat-survey": "the customer's satisfaction survey: the signed token in the URL is the key",
    "kb-article-list": "the help centre reads live public articles anonymously (docs/api.md)",
    "kb-article-detail": "the help centre reads live public articles anonymously",
    "kb-article-feedback": "anonymous readers vote on public articles, throttled per IP",
    "kb-search": "the help centre searches live public articles anonymously",
    "schema": "the OpenAPI schema describes the API and holds no data (SPECTACULAR SERVE_PERMISSIONS)",
    "api-docs": "the interactive docs render the public schema",
    "admin:login": "where the login redirects go",
}
REFUSED = {401, 403}
REDIRECTS = {301, 302, 303, 307, 308}
ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def filler(world: World) -> Callable[[Route, str, int], str]:
    """Real objects for the routes' arguments, so each path reaches its view's own checks."""
    ours = world.ours
    by_basename = {
        "customer": ours.customer.pk, "team": ours.team.pk, "agent": ours.agent.pk, "calendar": "cn-workweek",
        "review": ours.review.pk, "complaint": ours.complaint.pk,
    }

    def admin_row(route: Route) -> tuple[type | None, object]:
        match = ADMIN_MODEL.match(route.pattern)
        try:
            model = apps.get_model(match["app"], match["model"]) if match else None
        except LookupError:
            model = None
        row = model.objects.order_by("pk").first() if model else None
        return model, row.pk if row else 1

    def fill(route: Route, name: str, position: int) -> str:
        basename = (route.name or "").split(":")[-1].rsplit("-", 1)[0]
        fixed = {
            "reference": ours.ticket.reference, "customer_id": ours.customer.pk, "slug": world.public_article.slug,
            "token": "made-up-token", "app_label": "tickets", "url": "no-such-page/", "step": "publish",
            "content_type_id": ContentType.objects.get_for_model(Ticket).pk,
            "job_id": 1,  # an import job: refused before it is looked up
        }
        if name == "pk":
            return str(by_basename.get(basename, by_basename.get(basename.rsplit("-", 1)[0], 1)))
        if name in fixed:
            return str(fixed[name])
        model, pk = admin_row(route)
        if name == "history_id" or (name == "" and position == 1):  # a version of that row
            history = getattr(model, "history", None)
            row = history.filter(**{model._meta.pk.attname: pk}).first() if history is not None else None
            return str(row.history_id if row else 1)
        if name == "object_id" and route.name == "admin:view_on_site":
            return str(ours.ticket.pk)
        if name in ("object_id", "id", ""):
            return str(pk)
        raise AssertionError(f"No value for the argument {name!r} of {route.label}: teach filler() about it")

    return fill


def ask(client: Client, url: str, method: str) -> HttpResponse:
    if method == "get":
        return client.get(url)
    if url.startswith("/api/"):
        return getattr(client, method)(url, "{}", content_type="application/json")
    return getattr(client, method)(url, {})


def verdict(client: Client, url: str, method: str) -> tuple[bool, bool, str]:
    """(refused?, server error?, what happened). Redirects are followed (as GET) until the
    login page or anything else; only a refusal or the login page counts as refused."""
    login = reverse("admin:login")
    response = ask(client, url, method)
    trail = [f"{method.upper()} {url} -> {response.status_code}"]
    crashed = response.status_code == 500
    for _hop in range(5):
        if response.status_code not in REDIRECTS:
            break
        target = urlsplit(response["Location"])
        if target.path == login:
            return True, crashed, " ".join(trail) + " (login)"
        if target.netloc and target.netloc != "testserver":
            return False, crashed, " ".join(trail) + f" -> off-site {response['Location']}"
        next_url = target.path + (f"?{target.query}" if target.query else "")
        response = client.get(next_url)
        crashed = crashed or response.status_code == 500
        trail.append(f"GET {next_url} -> {response.status_code}")
    return response.status_code in REFUSED, crashed, " ".join(trail)


def unauthenticated_leaks(world: World, select: Callable[[Route], bool] = lambda r: True) -> tuple[list[str], int]:
    """Every (route, method) that answered an anonymous caller with anything but a refusal
    (public routes: with a 500), and how many requests were made."""
    client = Client(raise_request_exception=False)
    fill = filler(world)
    leaks, asked = [], 0
    for route in routes():
        if not select(route):
            continue
        try:
            url = example_path(route, fill)
        except ValueError as error:
            leaks.append(f"{route.label}: could not build a path: {error}")
            continue
        for method in methods(route):
            asked += 1
            refused, crashed, trail = verdict(client, url, method)
            if crashed:
                leaks.append(f"{route.label}: {trail}: a server error")
            elif not refused and route.name not in PUBLIC:
                leaks.append(f"{route.label}: {trail}")
    return leaks, asked


def test_every_url_refuses_an_anonymous_caller_unless_it_is_public_on_purpose(world):
    leaks, asked = unauthenticated_leaks(world)
    assert asked > 300, f"only {asked} requests: the route walk lost its way"
    assert not leaks, "Answered without credentials (add a permission, or a reason to PUBLIC):\n" + "\n".join(leaks)


def test_the_walk_reaches_admin_pages_router_routes_and_custom_views():
    names = {route.name for route in routes()}
    expected = {"admin:index", "admin:tickets_ticket_change", "admin:tickets_ticket_reply", "admin:live-view",
                "ticket-messages", "review-resolve-dispute", "kb-article-feedback", "customer-tickets", "csat-survey"}
    assert expected <= names


def test_every_public_url_name_exists():
    """A renamed public view must not leave a stale exception behind."""
    assert set(PUBLIC) <= {route.name for route in routes()}


def test_the_public_knowledge_base_and_survey_really_answer_anonymously(world, client):
    assert client.get(reverse("kb-article-detail", args=[world.public_article.slug])).status_code == 200
    assert client.get(reverse("kb-article-detail", args=[world.internal_article.slug])).status_code == 404
    # A made-up survey token is a clear 400, not a 500 and not somebody's survey.
    assert client.get(reverse("csat-survey", args=["made-up-token"])).status_code == 400


def test_the_public_schema_holds_no_data(world, client):
    schema = client.get(reverse("schema"), HTTP_ACCEPT="application/json").content.decode()
    for secret in (world.ours.customer.phone, world.ours.customer.email, world.ours.ticket.subject, "ours-m1"):
        assert secret not in schema


# --- the test must catch a view that forgets its permissions ----------------------------------


def _leaky_view(request):
    return HttpResponse(json.dumps({"tickets": list(Ticket.objects.values_list("subject", flat=True))}))


urlpatterns = [path("leaky/<int:pk>/", _leaky_view, name="leaky-report"), path("", include("config.urls"))]


def test_a_new_view_without_permissions_is_caught_and_named(world):
    with override_settings(ROOT_URLCONF=__name__):
        leaks, asked = unauthenticated_leaks(world, select=lambda r: r.name in ("leaky-report", "ticket-list"))
    assert asked == 4  # GET and POST of each
    assert len(leaks) == 2 and all(leak.startswith("leaky-report [leaky/<int:pk>/]") for leak in leaks), leaks
