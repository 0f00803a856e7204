"""The authorisation matrix generated from the URLconf: every route the resolver knows (API and
admin) × every role × an object of the caller's own team and one of the other team × GET, POST,
PUT, PATCH and DELETE. Zero leaks:

- no answer is a server error;
- anonymous callers are refused everywhere but the public routes (test_url_auth's PUBLIC);
- a team-scoped caller (alice and lena of Support, bob of Billing) gets no 2xx on a route about
  the other team's object, and no answer of theirs shows the other team's ticket subject,
  message, customer name or external id (lists included);
- a user with no role sees neither team's data anywhere; administrator-only routes answer no
  one else with 2xx; a read key's writes are refused.

Each route is classified by what its objects are (SCOPE): by URL name, or for the admin's model
pages by the model. A route nobody classified fails `test_every_route_is_classified`, so a new
route forces a decision instead of passing unseen; a new page of a classified model is covered
without editing this file. Writes run in a savepoint that is rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

from helpdesk.api_keys import create_api_key
from tickets.models import Ticket

from .routes import Route, example_path, routes
from .test_url_auth import PUBLIC
from .world import Side, World

pytestmark = pytest.mark.django_db

TEAM, SHARED, ADMIN_ONLY, PUBLIC_SCOPE, SKIP = "team", "shared", "admin-only", "public", "skip"
METHODS = ("get", "post", "put", "patch", "delete")

# API routes by URL name.
API_SCOPE = {
    "ticket-list": TEAM, "ticket-detail": TEAM, "ticket-claim": TEAM, "ticket-escalate": TEAM,
    "ticket-escalations": TEAM, "ticket-hand-back": TEAM, "ticket-messages": TEAM, "ticket-transition": TEAM,
    "customer-list": TEAM, "customer-detail": TEAM, "customer-tickets": TEAM, "csat-list": TEAM,
    "complaint-list": TEAM, "complaint-detail": TEAM, "review-list": TEAM, "review-detail": TEAM,
    "review-acknowledge": TEAM, "review-dispute": TEAM, "review-resolve-dispute": TEAM, "review-submit": TEAM,
    "canned-reply-list": TEAM, "agent-list": TEAM, "agent-detail": TEAM, "sample-run-list": TEAM,
    "reports-summary": TEAM, "qa-report": TEAM,
    "customer-erase": ADMIN_ONLY, "customer-export": ADMIN_ONLY,
    "message-ingest": SHARED, "import-tickets": SHARED,  # their own permissions: integrations, administrators
    "import-jobs": SHARED, "import-job": SHARED,  # the same permission; a job is seen by its creator and administrators
    "whoami": SHARED, "agent-me": SHARED, "team-list": SHARED, "team-detail": SHARED, "calendar-list": SHARED,
    "calendar-detail": SHARED, "calendar-due": SHARED,
    "kb-search": PUBLIC_SCOPE, "kb-article-list": PUBLIC_SCOPE, "kb-article-detail": PUBLIC_SCOPE,
    "kb-article-feedback": PUBLIC_SCOPE, "schema": PUBLIC_SCOPE, "api-docs": PUBLIC_SCOPE,
}
# Admin model pages (changelist, add, change, delete, history, ...) by model.
MODEL_SCOPE = {
    "tickets.ticket": TEAM, "tickets.csat": TEAM, "tickets.complaint": TEAM, "tickets.escalation": TEAM,
    "tickets.csatsurvey": TEAM, "tickets.autoreply": TEAM, "helpdesk.customer": TEAM, "helpdesk.agent": TEAM,
    "qa.review": TEAM, "qa.dispute": TEAM, "qa.samplerun": TEAM, "qa.calibration": TEAM,
    "knowledge.cannedreply": TEAM, "knowledge.trainingcase": TEAM, "helpdesk.notification": TEAM,
    "auth.user": ADMIN_ONLY, "auth.group": ADMIN_ONLY, "axes.accessattempt": ADMIN_ONLY,
    "axes.accessfailurelog": ADMIN_ONLY, "axes.accesslog": ADMIN_ONLY, "helpdesk.apikey": ADMIN_ONLY,
    "helpdesk.webhookendpoint": ADMIN_ONLY, "helpdesk.webhookdelivery": ADMIN_ONLY, "helpdesk.taskdelivery": ADMIN_ONLY,
    "tickets.importjob": ADMIN_ONLY,
    "helpdesk.team": SHARED, "helpdesk.skill": SHARED, "helpdesk.tag": SHARED, "helpdesk.businesscalendar": SHARED,
    "knowledge.article": SHARED, "knowledge.kbcategory": SHARED, "knowledge.articlefeedback": SHARED,
    "knowledge.searchlog": SHARED, "qa.scorecard": SHARED, "qa.scorecardversion": SHARED, "qa.samplescope": SHARED,
    "tickets.autoreplyrule": SHARED, "tickets.category": SHARED, "tickets.reportsubscription": SHARED,
    "tickets.routingrule": SHARED, "tickets.slapolicy": SHARED,
}
# The admin's own and custom pages by URL name.
ADMIN_SCOPE = {
    "admin:index": SHARED, "admin:app_list": SHARED, "admin:jsi18n": SHARED, "admin:password_change": SHARED,
    "admin:password_change_done": SHARED, "admin:login": PUBLIC_SCOPE, "admin:autocomplete": SHARED,
    "admin:view_on_site": TEAM, "admin:tickets_ticket_reply": TEAM, "admin:live-view": TEAM, "admin:live-data": TEAM,
    "admin:reports-dashboard": TEAM, "admin:reports-export-csv": TEAM, "admin:reports-export-xlsx": TEAM,
    "admin:qa_review_report": TEAM, "admin:qa_review_score": TEAM, "admin:knowledge_article_feedback": SHARED,
    "admin:knowledge_article_revert": SHARED, "admin:knowledge_article_workflow": SHARED,
    "admin:knowledge_gap_report": SHARED, "admin:access-review": ADMIN_ONLY, "admin:access-review-keys-csv": ADMIN_ONLY,
    "admin:access-review-users-csv": ADMIN_ONLY, "admin:audit": ADMIN_ONLY, "admin:audit-export-csv": ADMIN_ONLY,
    "admin:logout": SKIP,  # would log the caller out for the rest of the row
}
OTHER_SCOPE = {"csat-survey": PUBLIC_SCOPE, "healthz": PUBLIC_SCOPE}
ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")

ROLES = ("agent", "lead", "other_agent", "inspector", "trainer", "admin", "norole", "read_key", "write_key", "anonymous")
TEAM_ROLES = {"agent": "ours", "lead": "ours", "other_agent": "theirs"}
REFUSED = {301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 409}


def scope_of(route: Route) -> str | None:
    name = route.name or ""
    if name in API_SCOPE:
        return API_SCOPE[name]
    if name in ADMIN_SCOPE:
        return ADMIN_SCOPE[name]
    if name in OTHER_SCOPE:
        return OTHER_SCOPE[name]
    if route.pattern in ("admin/", "admin/(?P<url>.*)$", ""):
        return SHARED  # the index, the catch-all (redirects or 404), the site root
    match = ADMIN_MODEL.match(route.pattern)
    if match and f"{match['app']}.{match['model']}" in MODEL_SCOPE:
        return MODEL_SCOPE[f"{match['app']}.{match['model']}"]
    return None


def markers(side: Side) -> list[str]:
    """What only someone who may see the side's ticket may read."""
    return [side.ticket.subject, side.message.body, side.customer.name, side.customer.external_id]


def filler(world: World, side: Side) -> Callable[[Route, str, int], str]:
    by_basename = {"customer": side.customer.pk, "team": side.team.pk, "agent": side.agent.pk,
                   "calendar": "cn-workweek", "review": side.review.pk, "complaint": side.complaint.pk}
    by_model = {"tickets.ticket": side.ticket.pk, "tickets.csat": side.csat.pk, "tickets.complaint": side.complaint.pk,
                "helpdesk.customer": side.customer.pk, "helpdesk.agent": side.agent.pk, "helpdesk.team": side.team.pk,
                "qa.review": side.review.pk,
                "knowledge.cannedreply": side.canned_reply.pk, "qa.samplerun": side.sample_run.pk}

    def admin_row(route: Route) -> tuple[type | None, object]:
        match = ADMIN_MODEL.match(route.pattern)
        if not match:
            return None, 1
        from django.apps import apps

        try:
            model = apps.get_model(match["app"], match["model"])
        except LookupError:
            return None, 1
        label = f"{match['app']}.{match['model']}"
        if label in by_model:
            return model, by_model[label]
        row = model.objects.order_by("pk").first()
        return model, row.pk if row else 1

    def fill(route: Route, name: str, position: int) -> str:
        basename = (route.name or "").split(":")[-1].rsplit("-", 1)[0]
        fixed = {"reference": side.ticket.reference, "customer_id": side.customer.pk, "slug": side.article.slug,
                 "token": "made-up-token", "app_label": "tickets", "url": "no-such-page/", "step": "publish",
                 "content_type_id": ContentType.objects.get_for_model(Ticket).pk,
                 # Import jobs belong to their creator, not a team (tests/tickets/test_import_jobs.py
                 # asks who sees one); here an id of none, asked by every role.
                 "job_id": 1}
        if name == "pk":
            return str(by_basename.get(basename, by_basename.get(basename.rsplit("-", 1)[0], 1)))
        if name in fixed:
            return str(fixed[name])
        model, pk = admin_row(route)
        if name == "history_id" or (name == "" and position == 1):
            history = getattr(model, "history", None)
            row = history.filter(**{model._meta.pk.attname: pk}).first() if history is not None else None
            return str(row.history_id if row else 1)
        if name == "object_id" and route.name == "admin:view_on_site":
            return str(side.ticket.pk)
        if name in ("object_id", "id", ""):
            return str(pk)
        raise AssertionError(f"No value for the argument {name!r} of {route.label}: teach filler() about it")

    return fill


def is_list(route: Route, method: str) -> bool:
    """A list under an object's URL (a customer's tickets): filtered by the rule, so a 200 with
    nothing of theirs in it is the right answer; the markers say whether it showed any."""
    return (getattr(route.callback, "actions", None) or {}).get(method) == "list"


def methods_for(route: Route) -> tuple[str, ...]:
    """Every method for the API and the other views. The admin's views read any method but POST
    as GET (changeform_view, delete_view, changelist_view test `request.method == "POST"`), so
    their PUT, PATCH and DELETE cells are their GET cell, asked once."""
    return ("get", "post") if (route.name or "").startswith("admin:") or route.pattern.startswith("admin/") else METHODS


def takes_object(route: Route) -> bool:
    return "<" in route.pattern or "(?P<" in route.pattern or "([^/]+)" in route.pattern


@pytest.fixture
def callers(world: World, bob) -> dict[str, Client]:
    _read, read_plain = create_api_key(name="reader", scope="read")
    clients = {}
    for role in ROLES:
        client = Client(raise_request_exception=False)
        if role == "read_key":
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {read_plain}"
        elif role == "write_key":
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.key}"
        elif role != "anonymous":
            client.force_login(bob.user if role == "other_agent" else world.users[role])
        clients[role] = client
    return clients


def ask(client: Client, url: str, method: str):
    if method == "get":
        return client.get(url)
    if url.startswith("/api/"):
        return getattr(client, method)(url, "{}", content_type="application/json")
    if method == "post":
        return client.post(url, {})
    return getattr(client, method)(url, "", content_type="application/x-www-form-urlencoded")


def problems_of(role: str, scope: str, route: Route, side_name: str, method: str, response, world: World) -> list[str]:
    status = response.status_code
    where = f"{method.upper()} {route.label} as {role} on {side_name}'s object: {status}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8", "replace")
    found = []
    if status == 500 or (status > 500 and route.name != "healthz"):  # /healthz says 503 without beat's heartbeat
        found.append(f"{where}: a server error")
    if role == "anonymous" and scope != PUBLIC_SCOPE and route.name not in PUBLIC and status not in REFUSED:
        found.append(f"{where}: answered without credentials")
    if role in TEAM_ROLES:
        other = world.theirs if TEAM_ROLES[role] == "ours" else world.ours
        leaked = [m for m in markers(other) if m and m in text]
        if leaked:
            found.append(f"{where}: shows the other team's {leaked}")
        if scope == TEAM and side_name != TEAM_ROLES[role] and takes_object(route) and not is_list(route, method) \
                and 200 <= status < 300:
            found.append(f"{where}: reached the other team's object")
    if role in ("norole", "anonymous"):
        leaked = [m for side in (world.ours, world.theirs) for m in markers(side) if m and m in text]
        if leaked:
            found.append(f"{where}: shows {leaked}")
    if scope == ADMIN_ONLY and role not in ("admin",) and 200 <= status < 300:
        found.append(f"{where}: an administrator-only route answered")
    if role == "read_key" and method != "get" and route.pattern.startswith("api/") and 200 <= status < 300 \
            and route.name not in ("kb-article-feedback",):
        found.append(f"{where}: a read key wrote")
    return found


def unclassified(urlconf: str | None = None) -> list[str]:
    return [route.label for route in routes(urlconf) if scope_of(route) is None]


def test_every_route_is_classified():
    unknown = unclassified()
    assert not unknown, "Classify these routes in SCOPE (team, shared, admin-only, public):\n" + "\n".join(unknown)


def _new_report(request):
    return HttpResponse("")


urlpatterns = [
    path("api/v1/new-report/", _new_report, name="new-report"),
    path("admin/tickets/ticket/<path:object_id>/print/", _new_report, name="tickets_ticket_print"),
    path("", include("config.urls")),
]


def test_a_new_route_forces_a_decision_and_a_new_page_of_a_known_model_is_covered():
    assert unclassified(__name__) == ["new-report [api/v1/new-report/]"]
    printed = next(route for route in routes(__name__) if route.name == "tickets_ticket_print")
    assert scope_of(printed) == TEAM and takes_object(printed)


def test_every_classified_name_and_model_exists():
    names = {route.name for route in routes()}
    assert set(API_SCOPE) | set(ADMIN_SCOPE) | set(OTHER_SCOPE) <= names
    models = {f"{m['app']}.{m['model']}" for route in routes() if (m := ADMIN_MODEL.match(route.pattern))}
    assert set(MODEL_SCOPE) <= models


@pytest.mark.parametrize("role", ROLES)
def test_no_route_leaks_to_any_role_on_either_team(world, callers, role):
    client = callers[role]
    problems, asked = [], 0
    for route in routes():
        scope = scope_of(route)
        if scope in (None, SKIP):
            continue
        sides = [("ours", world.ours), ("theirs", world.theirs)] if takes_object(route) else [("ours", world.ours)]
        seen = set()
        for side_name, side in sides:
            url = example_path(route, filler(world, side))
            if url in seen:
                continue  # a row of no team's: the same page for both sides
            seen.add(url)
            for method in methods_for(route):
                with transaction.atomic():
                    response = ask(client, url, method)
                    transaction.set_rollback(True)
                asked += 1
                problems += problems_of(role, scope, route, side_name, method, response, world)
    assert asked > 500, asked
    assert not problems, f"{len(problems)} leaks:\n" + "\n".join(problems[:60])
