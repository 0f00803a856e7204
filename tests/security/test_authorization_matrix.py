"""The authorisation matrix: every role × every endpoint over team-scoped data × an object of
the caller's own team and one of another team, each answer compared with the intended rule.

The rule, from tickets.queries.visible_to, helpdesk.roles, the role migrations, the API's
permission classes and docs/api.md:
- Administrators, QA inspectors, trainers and integration keys work across teams; agents and
  team leads see their own teams' tickets, ratings, complaints, agents and canned replies;
  a user with no role is refused everything but the public knowledge base.
- Customers belong to no team: agents and team leads see the customers of the tickets they
  see (and those they created), administrators and keys all of them (with PII), inspectors and
  trainers none (tickets.queries.customers_visible_to).
- QA reviews: an agent sees their own submitted ones, a lead their team's, an inspector the
  ones assigned to them (iris has ours, ivy theirs).
- Knowledge articles belong to no team: "ours" is a public article and "theirs" an internal
  one, which integration keys and people without knowledge.view_article never see.

Cells: a status code, or for lists `in` / `out` (is the object listed?); "a/b" gives own / other.
Writes run in a savepoint that is rolled back: a refused write must leave the rows as they
were (read again before the rollback); an accepted one must have changed them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from knowledge.models import Article
from qa.models import Dispute, Review
from tickets.models import Csat, Message, Ticket

from .world import Side, World

pytestmark = pytest.mark.django_db

ROLES = ("agent", "lead", "inspector", "trainer", "admin", "key", "norole")

# The intended rule. Roles: agent = alice (Support), lead = lena (leads Support), inspector =
# iris, trainer = tom, admin = ada, key = the shop's integration key, norole = olga (staff, no role).
TABLE = """
endpoint                   agent    lead     inspector trainer admin  key      norole
tickets.list               in/out   in/out   in        in      in     in       403
tickets.detail             200/404  200/404  200       200     200    200      403
tickets.messages           200/404  200/404  200       200     200    200      403
tickets.escalations        200/404  200/404  403       403     200    200      403
customers.tickets          in/out   in/out   in        in      in     in       403
customers.list             in/out   in/out   403       403     in     in       403
customers.detail           200/404  200/404  403       403     200    200      403
csat.list                  in/out   in/out   in        in      in     in       403
complaints.list            403      in/out   in        in      in     in       403
complaints.detail          403      200/404  200       200     200    200      403
reviews.list               in/out   in/out   in/out    in      in     in       403
reviews.detail             200/404  200/404  200/404   200     200    200      403
sample_runs.list           403      403      in        in      in     in       403
reports.summary            403      200/403  200       200     200    200      403
qa.report                  403      200/403  403       200     200    200      403
canned_replies.list        in/out   in/out   out       out     out    out      403
canned_replies.for_ticket  200/404  200/404  200       200     200    200      403
kb.articles.list           in       in       in        in      in     in/out   in/out
kb.articles.detail         200      200      200       200     200    200/404  200/404
kb.search                  in       in       in        in      in     in/out   in/out
agents.list                in/out   in/out   in        in      in     in       403
agents.detail              200/404  200/404  200       200     200    200      403
tickets.patch              200/404  200/404  403       403     200    200      403
tickets.transition         200/404  200/404  403       403     200    200      403
tickets.messages.post      201/404  201/404  403       403     201    201      403
tickets.claim              200/404  200/404  403       403     400    400      403
tickets.escalate           201/404  201/404  403       403     201    201      403
tickets.hand_back          403      409/404  403       403     409    409      403
csat.create                403      403      403       403     201    201      403
customers.patch            200/404  200/404  403       403     200    200      403
reviews.submit             403      403      200/404   403     200    403      403
reviews.acknowledge        200/404  400/404  400/404   400     400    400      404
reviews.dispute            201/404  400/404  400/404   400     400    400      404
reviews.resolve_dispute    403      200/404  403       403     200    403      403
kb.feedback                201      201      201       201     201    201/404  201/404
"""


def _parse(table: str) -> dict[str, dict[str, tuple[str, str]]]:
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == ROLES
    parsed = {}
    for name, *cells in rows:
        assert len(cells) == len(ROLES), name
        parsed[name] = {}
        for role, cell in zip(ROLES, cells, strict=True):
            own, _slash, other = cell.partition("/")
            parsed[name][role] = (own, other or own)
    return parsed


EXPECTED = _parse(TABLE)

API = "/api/v1"


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: Callable[[World, Side], str]
    body: Callable[[World, Side], Any] | None = None
    listed: Callable[[Side, dict[str, Any]], bool] | None = None  # lists: is the side's object this row?
    state: Callable[[Side], Any] | None = None  # writes: the rows the call may change


def _ticket_state(side: Side) -> Any:
    ticket = Ticket.objects.get(pk=side.ticket.pk)
    return (ticket.status, ticket.priority, ticket.assignee_id, ticket.team_id, ticket.messages.count(),
            ticket.escalations.count())


def _review_state(review: Review) -> Any:
    row = Review.objects.get(pk=review.pk)
    dispute = Dispute.objects.filter(review=review).values_list("status", "resolution").first()
    return (row.status, row.score, row.submitted_at, row.acknowledged_at, row.scores.count(), dispute)


def _submit_body(world: World, side: Side) -> dict[str, Any]:
    criteria = side.assigned_review.scorecard_version.criteria.all()
    return {"scores": [{"criterion": c.code, "points": c.max_points, "comment": ""} for c in criteria],
            "strengths": "耐心", "shortcomings": "", "coaching": ""}


def _ref(side: Side) -> str:
    return side.ticket.reference


ENDPOINTS: dict[str, Endpoint] = {
    # reads
    "tickets.list": Endpoint("get", lambda w, s: f"{API}/tickets/?page_size=200",
                             listed=lambda s, row: row["reference"] == _ref(s)),
    "tickets.detail": Endpoint("get", lambda w, s: f"{API}/tickets/{_ref(s)}/"),
    "tickets.messages": Endpoint("get", lambda w, s: f"{API}/tickets/{_ref(s)}/messages/"),
    "tickets.escalations": Endpoint("get", lambda w, s: f"{API}/tickets/{_ref(s)}/escalations/"),
    "customers.tickets": Endpoint("get", lambda w, s: f"{API}/customers/{s.customer.pk}/tickets/",
                                  listed=lambda s, row: row["reference"] == _ref(s)),
    "customers.list": Endpoint("get", lambda w, s: f"{API}/customers/?page_size=200",
                               listed=lambda s, row: row["id"] == s.customer.pk),
    "customers.detail": Endpoint("get", lambda w, s: f"{API}/customers/{s.customer.pk}/"),
    "csat.list": Endpoint("get", lambda w, s: f"{API}/csat/?page_size=200", listed=lambda s, row: row["ticket"] == _ref(s)),
    "complaints.list": Endpoint("get", lambda w, s: f"{API}/complaints/?page_size=200",
                                listed=lambda s, row: row["id"] == s.complaint.pk),
    "complaints.detail": Endpoint("get", lambda w, s: f"{API}/complaints/{s.complaint.pk}/"),
    "reviews.list": Endpoint("get", lambda w, s: f"{API}/qa/reviews/?page_size=200",
                             listed=lambda s, row: row["id"] == s.review.pk),
    "reviews.detail": Endpoint("get", lambda w, s: f"{API}/qa/reviews/{s.review.pk}/"),
    "sample_runs.list": Endpoint("get", lambda w, s: f"{API}/qa/sample-runs/?page_size=200",
                                 listed=lambda s, row: row["scope"] == s.team.name),
    "reports.summary": Endpoint("get", lambda w, s: f"{API}/reports/summary?from=2026-03-01&to=2026-03-31&team={s.team.pk}"),
    "qa.report": Endpoint("get", lambda w, s: f"{API}/qa/report?from=2026-03-01&to=2026-03-31&by=agent&team={s.team.pk}"),
    "canned_replies.list": Endpoint("get", lambda w, s: f"{API}/canned-replies/?page_size=200",
                                    listed=lambda s, row: row["id"] == s.canned_reply.pk),
    "canned_replies.for_ticket": Endpoint("get", lambda w, s: f"{API}/canned-replies/?ticket={_ref(s)}"),
    "kb.articles.list": Endpoint("get", lambda w, s: f"{API}/kb/articles/?page_size=200",
                                 listed=lambda s, row: row["slug"] == s.article.slug),
    "kb.articles.detail": Endpoint("get", lambda w, s: f"{API}/kb/articles/{s.article.slug}/"),
    "kb.search": Endpoint("get", lambda w, s: f"{API}/kb/search?q=退货流程&limit=50",
                          listed=lambda s, row: row["slug"] == s.article.slug),
    "agents.list": Endpoint("get", lambda w, s: f"{API}/agents/?page_size=200", listed=lambda s, row: row["id"] == s.agent.pk),
    "agents.detail": Endpoint("get", lambda w, s: f"{API}/agents/{s.agent.pk}/"),
    # writes
    "tickets.patch": Endpoint("patch", lambda w, s: f"{API}/tickets/{_ref(s)}/", lambda w, s: {"priority": "high"},
                              state=_ticket_state),
    "tickets.transition": Endpoint("post", lambda w, s: f"{API}/tickets/{_ref(s)}/transition",
                                   lambda w, s: {"status": "pending", "reason": "等客户回复"}, state=_ticket_state),
    "tickets.messages.post": Endpoint("post", lambda w, s: f"{API}/tickets/{_ref(s)}/messages/",
                                      lambda w, s: {"author": "customer", "body": "补充一下"}, state=_ticket_state),
    "tickets.claim": Endpoint("post", lambda w, s: f"{API}/tickets/{_ref(s)}/claim", state=_ticket_state),
    "tickets.escalate": Endpoint("post", lambda w, s: f"{API}/tickets/{_ref(s)}/escalate",
                                 lambda w, s: {"team": w.escalation_team.pk, "reason": "需要二线"}, state=_ticket_state),
    "tickets.hand_back": Endpoint("post", lambda w, s: f"{API}/tickets/{_ref(s)}/hand-back", lambda w, s: {"note": "处理完毕"},
                                  state=_ticket_state),
    "csat.create": Endpoint("post", lambda w, s: f"{API}/csat/", lambda w, s: {"ticket": _ref(s), "stars": 5},
                            state=lambda s: Csat.objects.filter(ticket=s.ticket).values_list("stars", "source").get()),
    "customers.patch": Endpoint("patch", lambda w, s: f"{API}/customers/{s.customer.pk}/", lambda w, s: {"name": "改过的名字"},
                                state=lambda s: type(s.customer).objects.filter(pk=s.customer.pk).values_list("name").get()),
    "reviews.submit": Endpoint("post", lambda w, s: f"{API}/qa/reviews/{s.assigned_review.pk}/submit", _submit_body,
                               state=lambda s: _review_state(s.assigned_review)),
    "reviews.acknowledge": Endpoint("post", lambda w, s: f"{API}/qa/reviews/{s.review.pk}/acknowledge",
                                    state=lambda s: _review_state(s.review)),
    "reviews.dispute": Endpoint("post", lambda w, s: f"{API}/qa/reviews/{s.review.pk}/dispute", lambda w, s: {"reason": "评分不公"},
                                state=lambda s: _review_state(s.review)),
    "reviews.resolve_dispute": Endpoint("post", lambda w, s: f"{API}/qa/reviews/{s.disputed_review.pk}/resolve-dispute",
                                        lambda w, s: {"outcome": "uphold", "comment": "维持原评分"},
                                        state=lambda s: _review_state(s.disputed_review)),
    "kb.feedback": Endpoint("post", lambda w, s: f"{API}/kb/articles/{s.article.slug}/feedback", lambda w, s: {"helpful": True},
                            state=lambda s: Article.objects.filter(pk=s.article.pk).values_list("helpful_count").get()),
}


def client_for(world: World, role: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if role == "key":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.key}")
    else:
        client.force_authenticate(world.users[role])
    return client


def call(client: APIClient, endpoint: Endpoint, world: World, side: Side):
    url = endpoint.url(world, side)
    if endpoint.method == "get":
        return client.get(url)
    body = endpoint.body(world, side) if endpoint.body else None
    return getattr(client, endpoint.method)(url, body, format="json")


def outcome(endpoint: Endpoint, side: Side, response) -> str:
    """What the caller got, in the table's terms."""
    if endpoint.listed is None or response.status_code != 200:
        return str(response.status_code)
    rows = response.json()["results"]
    return "in" if any(endpoint.listed(side, row) for row in rows) else "out"


def run_cell(world: World, role: str, name: str, own: bool) -> list[str]:
    """The problems with one cell (empty when it matches the rule)."""
    endpoint, side = ENDPOINTS[name], world.ours if own else world.theirs
    expected = EXPECTED[name][role][0 if own else 1]
    problems = []
    with transaction.atomic():
        before = endpoint.state(side) if endpoint.state else None
        response = call(client_for(world, role), endpoint, world, side)
        after = endpoint.state(side) if endpoint.state else None
        transaction.set_rollback(True)
    got = outcome(endpoint, side, response)
    where = f"{name} as {role} on {'own' if own else 'other'} team's object"
    if got != expected:
        problems.append(f"{where}: expected {expected}, got {got}: {response.content.decode()[:200]}")
    if endpoint.state is not None:
        if response.status_code < 300 and before == after:
            problems.append(f"{where}: answered {response.status_code} but changed nothing")
        if response.status_code >= 300 and before != after:
            problems.append(f"{where}: refused with {response.status_code} but changed {before} -> {after}")
    return problems


def test_the_table_covers_every_endpoint_and_no_other():
    assert set(EXPECTED) == set(ENDPOINTS)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_each_role_reaches_exactly_what_the_rule_allows(world, name):
    problems = [problem for role in ROLES for own in (True, False) for problem in run_cell(world, role, name, own)]
    assert not problems, "\n".join(problems)


# --- what the matrix cannot say in one cell ---------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "key"])
def test_another_tickets_message_is_not_reachable_through_your_own_tickets_url(world, role):
    ours, theirs = world.ours, world.theirs
    client = client_for(world, role)
    base = f"{API}/tickets/{ours.ticket.reference}/messages/"

    by_id = client.get(f"{base}{theirs.message.pk}/")
    assert by_id.status_code == 404 and "theirs" not in by_id.content.decode()

    listed = client.get(base).json()["results"]
    assert [m["id"] for m in listed] == [ours.message.pk]
    assert [a["name"] for m in listed for a in m["attachments"]] == ["ours.png"]

    # A resent channel message is recognised within its own ticket only: naming another
    # ticket's message id stores a new message here and returns nothing of the other one.
    posted = client.post(base, {"author": "customer", "body": "新的消息", "external_id": theirs.message.channel_message_id},
                         format="json")
    assert posted.status_code == 201, posted.content
    assert posted.json()["id"] != theirs.message.pk and posted.json()["body"] == "新的消息"
    assert Message.objects.get(pk=posted.json()["id"]).ticket_id == ours.ticket.pk
    assert Message.objects.get(pk=theirs.message.pk).body == "theirs 的消息"


def test_fields_no_endpoint_may_set_on_a_ticket_are_ignored(world):
    ticket = world.ours.ticket
    before = Ticket.objects.filter(pk=ticket.pk).values().get()
    response = client_for(world, "agent").patch(f"{API}/tickets/{ticket.reference}/", {
        "status": "closed", "solved_at": "2026-01-01T00:00:00Z", "closed_at": "2026-01-01T00:00:00Z",
        "customer": world.theirs.customer.pk, "channel": "email", "reference": "T09999999", "external_id": "forged",
        "created_at": "2020-01-01T00:00:00Z", "first_response_at": "2020-01-01T00:00:00Z", "id": 99999,
    }, format="json")
    assert response.status_code == 200
    assert Ticket.objects.filter(pk=ticket.pk).values().get() == before


def test_an_agent_cannot_hand_a_ticket_to_an_agent_they_cannot_see(world, bob):
    """Assigning is not a way to learn other teams' agents (their usernames came back in the
    answer) nor to push work on them: such an agent is as unknown as one that does not exist."""
    ticket = world.ours.ticket
    client = client_for(world, "agent")
    unseen = client.patch(f"{API}/tickets/{ticket.reference}/", {"assignee": bob.pk}, format="json")
    missing = client.patch(f"{API}/tickets/{ticket.reference}/", {"assignee": 999999}, format="json")
    assert unseen.status_code == missing.status_code == 400
    assert unseen.json()["error"]["fields"]["assignee"][0].replace(str(bob.pk), "N") == (
        missing.json()["error"]["fields"]["assignee"][0].replace("999999", "N")
    )
    assert "bob" not in unseen.content.decode().lower()
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None
    # Their own team's agents, and anyone for an administrator, stay assignable.
    lena = world.users["lead"].agent
    assert client.patch(f"{API}/tickets/{ticket.reference}/", {"assignee": lena.pk}, format="json").status_code == 200
    assert client_for(world, "admin").patch(f"{API}/tickets/{ticket.reference}/", {"assignee": bob.pk},
                                         format="json").status_code == 200


def test_an_agent_sets_only_their_presence_not_their_teams_capacity_or_staff_flags(world, alice):
    user = alice.user
    capacity = alice.max_concurrent
    response = client_for(world, "agent").patch(f"{API}/agents/me/", {
        "presence": "away", "teams": [world.theirs.team.pk], "max_concurrent": 99, "display_name": "Boss",
        "is_staff": False, "is_superuser": True, "user": world.users["admin"].pk, "skills": [],
    }, format="json")
    assert response.status_code == 200
    alice.refresh_from_db()
    user.refresh_from_db()
    assert alice.presence == "away"
    assert list(alice.teams.values_list("pk", flat=True)) == [world.ours.team.pk]
    assert (alice.max_concurrent, alice.display_name, alice.user_id) == (capacity, "Alice", user.pk)
    assert (user.is_staff, user.is_superuser) == (True, False)


def test_an_inspector_cannot_set_the_score_or_hand_the_review_to_someone_else(world):
    review = world.ours.assigned_review
    body = _submit_body(world, world.ours)
    for row in body["scores"]:
        row["points"] = 0
    body |= {"score": "100.00", "status": "submitted", "inspector": world.theirs.review.inspector_id, "agent": None}
    response = client_for(world, "inspector").post(f"{API}/qa/reviews/{review.pk}/submit", body, format="json")
    assert response.status_code == 200
    review.refresh_from_db()
    assert review.score == 0 and review.inspector_id == world.users["inspector"].pk and review.agent_id == world.ours.agent.pk


def test_the_reviewed_agent_can_neither_score_nor_settle_their_own_dispute(world):
    client = client_for(world, "agent")
    disputed, assigned = world.ours.disputed_review, world.ours.assigned_review
    before = (_review_state(disputed), _review_state(assigned))
    amend = client.post(f"{API}/qa/reviews/{disputed.pk}/resolve-dispute", {
        "outcome": "amend", "comment": "我自己改", "scores": [{"criterion": "greeting", "points": 2}]}, format="json")
    submit = client.post(f"{API}/qa/reviews/{assigned.pk}/submit", _submit_body(world, world.ours), format="json")
    assert (amend.status_code, submit.status_code) == (403, 403)
    assert (_review_state(disputed), _review_state(assigned)) == before


def test_a_customer_message_cannot_set_a_status_or_be_an_internal_note(world):
    ticket = world.ours.ticket
    client = client_for(world, "key")
    url = f"{API}/tickets/{ticket.reference}/messages/"
    with_status = client.post(url, {"author": "customer", "body": "好了", "status": "closed"}, format="json")
    internal = client.post(url, {"author": "customer", "body": "悄悄话", "internal": True}, format="json")
    assert (with_status.status_code, internal.status_code) == (400, 400)
    assert Ticket.objects.get(pk=ticket.pk).status == "open" and ticket.messages.count() == 1


@pytest.mark.parametrize("query", [
    "tickets/?team={theirs_team}", "tickets/?assignee={bob}", "tickets/?customer={theirs_customer}",
    "csat/?team={theirs_team}", "csat/?agent={bob}", "qa/reviews/?agent={bob}",
])
def test_filters_cannot_widen_what_an_agent_sees(world, bob, query):
    Ticket.objects.filter(pk=world.theirs.ticket.pk).update(assignee=bob)
    url = f"{API}/" + query.format(theirs_team=world.theirs.team.pk, bob=bob.pk, theirs_customer=world.theirs.customer.pk)
    response = client_for(world, "agent").get(url)
    assert response.status_code == 200 and response.json()["results"] == []
