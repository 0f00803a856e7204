"""QA reports: scores by agent, team and criterion with intervals and trend; training needs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from qa.models import Review, Scorecard
from qa.services import submit_review
from qa.statistics import mean_with_interval

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_small_sample_gets_a_wide_interval():
    few = mean_with_interval([80, 90, 100])
    many = mean_with_interval([80, 90, 100] * 20)
    assert few[0] == many[0] == 90
    assert few[2] - few[1] > 4 * (many[2] - many[1])
    assert mean_with_interval([75]) == (75, None, None) and mean_with_interval([]) == (None, None, None)


@pytest.fixture
def reviewed(iris, alice, bob):
    version = Scorecard.objects.get(slug="standard").versions.get()
    made = []
    for agent, solution in ((alice, 2), (alice, 1), (bob, 0)):
        review = Review.objects.create(ticket=TicketFactory(assignee=agent), agent=agent, inspector=iris, scorecard_version=version)
        scores = {c.code: (c.max_points, "") for c in version.criteria.all()} | {"solution": (solution, "")}
        made.append(submit_review(review=review, scores=scores, actor=iris))
    Review.objects.update(submitted_at=datetime(2026, 11, 18, 12, tzinfo=SHANGHAI))
    return made


def test_scores_by_agent_criterion_and_the_training_needs(api, reviewed, alice, bob):
    body = api.get("/api/v1/qa/report", {"from": "2026-11-16", "to": "2026-11-22", "by": "agent"}).json()
    rows = {row["name"]: row for row in body["rows"]}
    assert rows["Alice"]["reviews"] == 2 and rows["Alice"]["mean"] == pytest.approx((100 + 92.5) / 2)
    assert rows["Alice"]["trend"] == [{"week": "2026-W47", "mean": rows["Alice"]["mean"]}]
    assert rows["Bob"]["ci95"] == [None, None]  # one review: no interval
    criteria = {row["key"]: row for row in api.get("/api/v1/qa/report", {"from": "2026-11-16", "to": "2026-11-22", "by": "criterion"}).json()["rows"]}
    assert criteria["solution"]["mean"] == pytest.approx(50.0) and criteria["greeting"]["mean"] == 100
    needs = {n["agent"]: [c["code"] for c in n["criteria"]] for n in body["training_needs"]}
    assert needs == {"Alice": ["solution"], "Bob": ["solution"]}
    assert Decimal(str(rows["Bob"]["mean"])) == Decimal("85")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"to": "2026-11-22"}, "from"), ({"from": "2026-11-22", "to": "2026-11-01"}, "to"),
     ({"from": "2025-01-01", "to": "2026-11-01"}, "to"), ({"from": "2026-11-01", "to": "2026-11-22", "by": "x"}, "by")],
)
def test_bad_report_queries_name_the_field(api, query, field):
    response = api.get("/api/v1/qa/report", query)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_an_agent_cannot_read_everyones_scores_and_a_lead_reads_their_team(client, alice, lena, support_team, billing_team):
    client.force_login(alice.user)
    assert client.get("/api/v1/qa/report", {"from": "2026-11-16", "to": "2026-11-22"}).status_code == 403
    client.force_login(lena.user)
    assert client.get("/api/v1/qa/report", {"from": "2026-11-16", "to": "2026-11-22", "team": billing_team.pk}).status_code == 403
    assert client.get("/api/v1/qa/report", {"from": "2026-11-16", "to": "2026-11-22", "team": support_team.pk}).status_code == 200


def test_days_at_the_edge_of_the_calendar_are_a_400_not_a_500(api):
    response = api.get("/api/v1/qa/report", {"from": "9999-12-31", "to": "9999-12-31"})
    assert response.status_code == 400 and "from" in response.json()["error"]["fields"]


def test_the_admin_report_page_for_a_trainer_and_not_for_an_agent(client, reviewed, tom, alice):
    from django.urls import reverse

    url = reverse("admin:qa_review_report")
    client.force_login(tom)
    page = client.get(url, {"start": "2026-11-16", "end": "2026-11-22", "by": "agent"})
    assert page.status_code == 200
    assert [row["name"] for row in page.context["rows"]] == ["Bob", "Alice"]  # lowest first
    assert "解决方案合理、有效" in page.content.decode()  # the training needs list
    bad = client.get(url, {"start": "2026-11-22", "end": "2026-11-01", "by": "agent"})
    assert bad.status_code == 200 and "end" in bad.context["form"].errors
    client.force_login(alice.user)
    assert client.get(url, {"start": "2026-11-16", "end": "2026-11-22", "by": "agent"}).status_code in (302, 403)
