"""Customer details never reach a role without helpdesk.view_customer_pii: QA inspectors,
trainers and a custom role that may view customers but not their details read conversations,
scorecards, reviews, disputes, training cases and reports with the customer masked, in every
admin page and every API answer.

The pages come from the root URL resolver (tests/security/routes.py): every admin page
(changelists, change, add, delete and history pages of every registered model, the custom
views, each autocomplete field) and every API endpoint that answers GET, each with the objects
of one customer whose name, phone, email, WeChat openid and shop id are distinctive strings and
who typed their phone, email, ID and bank card number, an order number and their address into
the conversation (and the order number into a subject). A page or endpoint
added tomorrow is asked tomorrow; one that cannot be asked generically is in SKIP with its reason
(unnamed routes, the admin's old-style redirects and its catch-all, only redirect).
Files (CSV, XLSX) are read as text, zip containers unpacked. An administrator asks the same
pages and must see each detail somewhere: the world really holds them.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from helpdesk import roles
from helpdesk.models import Channel, Customer, CustomerIdentity, WebhookEndpoint
from helpdesk.notifications import notify
from helpdesk.webhooks import forget_endpoints
from knowledge import services as kb
from qa.models import Review, Scorecard
from qa.services import start_calibration
from tickets import services
from tickets.models import Csat, Message, Ticket

from .pii_capture import findings
from .routes import Route, example_path, routes
from .world import World

pytestmark = pytest.mark.django_db

NAME = "欧阳娜娜"
PHONE, PHONE_TYPED = "13987654321", "139 8765 4321"
EMAIL = "nana.ouyang@pii-example.org"
EXTERNAL_ID = "crm-nana-778899"
OPENID = "oWx-nana-openid-5566"
ID_NUMBER = "11010519880808123X"
CARD = "6222021234567890123"
ORDER_NUMBER = "DD2026112312345678"
ADDRESS = "建国路88号"  # the street and number of 北京市朝阳区建国路88号3号楼501室
PII = {"name": NAME, "phone": PHONE, "email": EMAIL, "external id": EXTERNAL_ID, "wechat openid": OPENID,
       "id number": ID_NUMBER, "bank card": CARD, "order number": ORDER_NUMBER, "address": ADDRESS}

MASKED_ROLES = ("inspector", "trainer", "viewer")

# Routes not asked generically, by URL name, each with the reason.
SKIP = {
    "admin:logout": "logs the caller out: the pages after it would be the login page",
    "admin:autocomplete": "needs a model and field in its query string: asked once per autocomplete field below",
    "admin:login": "a logged-in caller is sent on to the index, which is asked",
    "csat-survey": "public, for the customer; its token is the key (test_url_auth)",
    "healthz": "statuses and an age, no data",
}
# Query strings a route needs to show data rather than a form error.
QUERY = {
    "kb-search": "q=退货流程&limit=50",
    "reports-summary": "from={since}&to={today}",
    "qa-report": "from={since}&to={today}&by=agent",
    "calendar-due": "start=2026-03-02T09:00:00Z&seconds=3600",
}
ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")
ROWS_PER_MODEL = 4
# A route argument naming a row of the route's model (simple-history's groups are unnamed).
ROW_ARGUMENT = re.compile(r"<(?:\w+:)?(?:object_id|pk|id)>|\(\?P<(?:object_id|pk|id|reference)>|\(\[\^/\]\+\)")


@dataclass
class PiiWorld:
    world: World
    customer: Customer
    users: dict[str, User]  # inspector, trainer, viewer, admin
    ticket: Ticket  # open, Support's, with the customer's message and a reply naming them
    solved: Ticket  # solved: a survey, a training case, a review waiting for iris, a calibration


def _customer_viewer_role() -> Group:
    """A custom role: may view customers, but not their details (docs/architecture.md)."""
    group = Group.objects.create(name="Customer viewer")
    group.permissions.add(Permission.objects.get(content_type__app_label="helpdesk", codename="view_customer"))
    return group


@pytest.fixture
def pii(world, alice, lena, iris, tom, ada, django_capture_on_commit_callbacks) -> PiiWorld:
    ours = world.ours
    viewer = User.objects.create_user("cora", is_staff=True)
    viewer.groups.add(Group.objects.get(name=roles.TRAINER), _customer_viewer_role())
    WebhookEndpoint.objects.create(name="crm", url="https://crm.example.com/hook", secret="s3cret",
                                   events=["ticket.created", "message.created", "csat.received"])
    forget_endpoints()

    customer = ours.customer
    customer.name, customer.phone, customer.email, customer.external_id = NAME, PHONE, EMAIL, EXTERNAL_ID
    customer._history_user = alice.user
    customer.save()
    CustomerIdentity.objects.create(customer=customer, channel=Channel.WECHAT, external_id=OPENID)
    typed = (f"我的手机 {PHONE_TYPED}，邮箱 {EMAIL}，身份证 {ID_NUMBER}，银行卡 {CARD}，订单号 {ORDER_NUMBER}，"
             f"寄到北京市朝阳区{ADDRESS}3号楼501室")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ours.ticket
        photo = {"name": f"身份证_{PHONE}.jpg", "url": f"https://files.example.com/wx/{OPENID}/1.jpg", "size": 2048}
        services.post_message(ticket=ticket, author_kind=Message.AuthorKind.CUSTOMER, body=typed, attachments=[photo],
                              actor=alice.user)
        services.post_message(ticket=ticket, author_kind=Message.AuthorKind.AGENT, agent=alice,
                              body=f"{NAME}您好，已给 {PHONE} 回电。", actor=alice.user)
        Csat.objects.filter(pk=ours.csat.pk).update(comment=f"打 {PHONE} 没人接")

        solved = services.open_ticket(customer=customer, subject=f"退款进度 订单号 {ORDER_NUMBER}", channel=Channel.WECHAT,
                                      body=typed,
                                      team=ours.team, actor=alice.user)
        services.assign_ticket(ticket=solved, agent=alice, actor=alice.user)
        services.post_message(ticket=solved, author_kind=Message.AuthorKind.AGENT, agent=alice,
                              body=f"{NAME}您好，退款已到 {CARD}。", status_after=Ticket.Status.SOLVED, actor=alice.user)
        solved.refresh_from_db()
        kb.archive_case(ticket=solved, actor=tom, title="退款跟进")
        version = Scorecard.objects.get(slug="standard").versions.get(number=1)
        Review.objects.create(run=ours.sample_run, ticket=solved, agent=alice, inspector=iris, scorecard_version=version)
        start_calibration(name="三月校准", tickets=[solved], inspectors=[iris, world.theirs.review.inspector],
                          version=version, actor=ada)

        escalated = services.open_ticket(customer=customer, subject="账户冻结", channel=Channel.PHONE,
                                         body=typed, team=ours.team, actor=alice.user)
        services.escalate_ticket(ticket=escalated, team=world.escalation_team, reason="需要二线", actor=lena.user)
        notify(recipients=[iris, tom, viewer, ada], kind="sla_level_1", text=f"{ticket.reference} 需要处理",
               ticket=ticket)
        kb.find(f"{PHONE} 退货流程", user=alice.user, source="agent", public_only=False)
    forget_endpoints()
    users = {"inspector": iris, "trainer": tom, "viewer": viewer, "admin": ada}
    return PiiWorld(world=world, customer=customer, users=users, ticket=ticket, solved=solved)


# --- the pages ----------------------------------------------------------------------------


def customer_path(model: type[Model], depth: int = 4) -> str | None:
    """The shortest chain of foreign keys from `model` to Customer ("ticket__customer")."""
    if model is Customer:
        return "pk"
    queue: list[tuple[type[Model], str]] = [(model, "")]
    for _level in range(depth):
        following = []
        for current, prefix in queue:
            for field in current._meta.get_fields():
                if not (field.many_to_one or field.one_to_one) or not field.concrete or field.related_model is None:
                    continue
                path = f"{prefix}{field.name}"
                if field.related_model is Customer:
                    return path
                following.append((field.related_model, f"{path}__"))
        queue = following
    return None


def rows_for(model: type[Model] | None, customer: Customer) -> list[str]:
    """Rows of `model` about the customer (a few), else its first row."""
    if model is None:
        return ["1"]
    rows = model._default_manager.order_by("pk")
    path = customer_path(model)
    linked = list(rows.filter(**{path: customer.pk}).values_list("pk", flat=True)[:ROWS_PER_MODEL]) if path else []
    return [str(pk) for pk in linked or rows.values_list("pk", flat=True)[:1]] or ["1"]


def _admin_model(route: Route) -> type[Model] | None:
    match = ADMIN_MODEL.match(route.pattern)
    if not match:
        return None
    try:
        return apps.get_model(match["app"], match["model"])
    except LookupError:
        return None


def _viewset_model(route: Route) -> type[Model] | None:
    view = getattr(route.callback, "cls", None) or getattr(route.callback, "view_class", None)
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    model = getattr(view, "permission_model", None)
    if model is None:
        meta = getattr(getattr(view, "serializer_class", None), "Meta", None)
        model = getattr(meta, "model", None)
    return model


def _version(model: type[Model] | None, pk: str) -> str:
    history = getattr(model, "history", None)
    if history is None:
        return "1"
    row = history.filter(**{model._meta.pk.attname: pk}).order_by("-history_id").first()
    return str(row.history_id if row else 1)


def _paths(route: Route, pii: PiiWorld, model: type[Model] | None) -> Iterator[str]:
    """Each path worth asking for the route: one per row of the customer's, where it takes a row."""
    pattern = route.pattern
    if "<reference>" in pattern:  # a ticket's routes: each of the customer's tickets
        model = Ticket
    takes_row = ROW_ARGUMENT.search(pattern) is not None
    labels = sorted({m._meta.app_label for m in admin.site._registry}) if "(?P<app_label>" in pattern else [""]
    for row in rows_for(model, pii.customer) if takes_row else [""]:
        for label in labels:
            fixed = {
                "object_id": row, "pk": row, "id": row, "app_label": label,
                "reference": Ticket(pk=int(row)).reference if model is Ticket and row else pii.ticket.reference,
                "customer_id": str(pii.customer.pk), "slug": pii.world.public_article.slug, "step": "publish",
                "history_id": _version(model, row) if row else "1",
                "content_type_id": str(ContentType.objects.get_for_model(Ticket).pk),
                "job_id": "1",  # an import job holds no customer of the world; asked to see it is refused
            }

            def fill(route: Route, name: str, position: int, fixed: dict[str, str] = fixed) -> str:
                if name == "object_id" and route.name == "admin:view_on_site":
                    return str(pii.ticket.pk)
                if name == "":  # simple-history's unnamed groups: the row, then its version
                    name = "object_id" if position == 0 else "history_id"
                if name not in fixed:
                    raise AssertionError(f"No value for the argument {name!r} of {route.label}: teach _paths()")
                return fixed[name]

            yield example_path(route, fill)


def _answers_get(route: Route) -> bool:
    actions = getattr(route.callback, "actions", None)
    if actions is not None:
        return "get" in actions
    view = getattr(route.callback, "view_class", None) or getattr(route.callback, "cls", None)
    return view is None or hasattr(view, "get")


def admin_pages(pii: PiiWorld) -> list[str]:
    """Every admin page the resolver knows, for the customer's rows, and every autocomplete field."""
    urls = []
    for route in routes():
        if not (route.name or "").startswith("admin:") or route.name in SKIP:
            continue
        urls.extend(_paths(route, pii, _admin_model(route)))
    for model, model_admin in admin.site._registry.items():
        for field in model_admin.autocomplete_fields:
            urls.append(f"/admin/autocomplete/?app_label={model._meta.app_label}&model_name={model._meta.model_name}"
                        f"&field_name={field}&term=")
    return urls


def api_endpoints(pii: PiiWorld) -> list[str]:
    """Every API route that answers GET, for the customer's rows, with the query it needs."""
    today = timezone.localdate()
    values = {"today": today, "since": today - timedelta(days=60)}
    urls = []
    for route in routes():
        if not route.pattern.startswith("api/") or route.name in SKIP or not _answers_get(route):
            continue
        query = QUERY.get(route.name or "", "").format(**values)
        if (getattr(route.callback, "actions", None) or {}).get("get") == "list":
            query = "&".join(filter(None, [query, "page_size=200"]))
        urls.extend(f"{path}?{query}" if query else path for path in _paths(route, pii, _viewset_model(route)))
    return urls


# --- reading the answers ------------------------------------------------------------------


def text_of(response: HttpResponse) -> str:
    """The body as text: streamed bodies joined, zip containers (XLSX) unpacked."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    return content.decode("utf-8", "replace")


@dataclass
class Answer:
    url: str
    status: int
    text: str


def ask_all(user: User, urls: list[str]) -> list[Answer]:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    answers = []
    for url in urls:
        response = client.get(url)
        answers.append(Answer(url, response.status_code, text_of(response)))
    return answers


def leaks(answers: list[Answer]) -> list[str]:
    found = []
    for answer in answers:
        found += [f"{answer.url} ({answer.status}): {finding}" for finding in findings([answer.text], PII)]
        if answer.status >= 500:
            found.append(f"{answer.url}: a server error")
    return found


def shown(answers: list[Answer], predicate: Callable[[str], bool] = lambda url: True) -> dict[str, list[str]]:
    """For each detail, the pages that show it."""
    return {kind: [a.url for a in answers if predicate(a.url) and findings([a.text], {kind: value})]
            for kind, value in PII.items()}


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", MASKED_ROLES)
def test_no_admin_page_shows_customer_details_to_a_role_without_the_pii_right(pii, role):
    answers = ask_all(pii.users[role], admin_pages(pii))
    found = leaks(answers)
    assert not found, f"Customer details shown to {role}:\n" + "\n".join(found)
    # They did read what they work with: the conversation, on the ticket page.
    ok = {a.url for a in answers if a.status == 200}
    page = next(a for a in answers if a.url == f"/admin/tickets/ticket/{pii.ticket.pk}/change/")
    assert page.status == 200 and "我的手机 ***，邮箱 ***，身份证 110105" in page.text
    assert f"/admin/knowledge/trainingcase/{pii.solved.training_cases.get().pk}/change/" in ok
    if role == "inspector":
        score = Review.objects.filter(ticket=pii.solved, inspector=pii.users[role], calibration=None).get()
        assert f"/admin/qa/review/{score.pk}/score/" in ok
    if role == "viewer":
        assert f"/admin/helpdesk/customer/{pii.customer.pk}/change/" in ok


@pytest.mark.parametrize("role", MASKED_ROLES)
def test_no_api_answer_shows_customer_details_to_a_role_without_the_pii_right(pii, role):
    answers = ask_all(pii.users[role], api_endpoints(pii))
    found = leaks(answers)
    assert not found, f"Customer details shown to {role}:\n" + "\n".join(found)
    ok = {a.url.split("?")[0] for a in answers if a.status == 200}
    assert {f"/api/v1/tickets/{pii.ticket.reference}/", f"/api/v1/tickets/{pii.ticket.reference}/messages/"} <= ok
    if role == "viewer":
        assert f"/api/v1/customers/{pii.customer.pk}/" in ok


def test_an_administrator_sees_every_detail_on_the_same_pages(pii):
    """Otherwise the tests above would pass on a world without customer details."""
    answers = ask_all(pii.users["admin"], admin_pages(pii) + api_endpoints(pii))
    assert not [a.url for a in answers if a.status >= 500]
    on_admin = shown(answers, lambda url: url.startswith("/admin/"))
    on_api = shown(answers, lambda url: url.startswith("/api/"))
    assert all(on_admin.values()), {kind: len(urls) for kind, urls in on_admin.items()}
    assert all(on_api.values()), {kind: len(urls) for kind, urls in on_api.items()}
    page = next(a for a in answers if a.url == f"/admin/tickets/ticket/{pii.ticket.pk}/change/")
    missing = [kind for kind, value in PII.items() if not findings([page.text], {kind: value})]
    assert missing == ["external id"]  # shown on the customer page and in the API


def test_the_walk_reaches_every_kind_of_page(pii):
    pages, endpoints = admin_pages(pii), api_endpoints(pii)
    assert len(pages) > 150 and len(endpoints) > 25, (len(pages), len(endpoints))
    expected = [
        "/admin/tickets/ticket/reports/export.xlsx", "/admin/tickets/ticket/reports/export.csv",
        "/admin/tickets/ticket/live/", f"/admin/helpdesk/customer/{pii.customer.pk}/history/",
        "/admin/knowledge/article/gaps/", "/admin/qa/review/report/", "/admin/tickets/complaint/",
        "field_name=customer",
    ]
    assert [e for e in expected if not any(e in url for url in pages)] == []
    assert any(url.startswith(f"/api/v1/customers/{pii.customer.pk}/export") for url in endpoints)


def test_every_skipped_route_exists():
    assert set(SKIP) <= {route.name for route in routes()}


@pytest.mark.django_db
def test_a_subject_the_customer_wrote_reads_scrubbed_for_inspectors_and_as_written_for_agents(client, iris, alice, support_team):
    """Email and chat subjects are the customer's words: the list, the page and the API scrub them."""
    from django.urls import reverse

    from ..factories import CustomerFactory, TicketFactory

    customer = CustomerFactory(name="欧阳娜娜", phone="13987654321")
    ticket = TicketFactory(team=support_team, customer=customer, subject="欧阳娜娜 13987654321 退款")
    TicketFactory(team=support_team, customer=customer, subject="13987654321 又来了")
    pages = [
        reverse("admin:tickets_ticket_changelist"),
        reverse("admin:tickets_ticket_change", args=[ticket.pk]),
        f"/api/v1/tickets/{ticket.reference}/",
        "/api/v1/tickets/",
    ]
    client.force_login(iris)
    for url in pages:
        body = client.get(url).content.decode()
        assert "退款" in body, url
        assert "13987654321" not in body and "欧阳娜娜" not in body, url
    assert Ticket.objects.get(pk=ticket.pk).subject == "欧阳娜娜 13987654321 退款"  # only the reading changed
    client.force_login(alice.user)
    for url in pages:
        assert "欧阳娜娜 13987654321 退款" in client.get(url).content.decode(), url
