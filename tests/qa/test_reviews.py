"""Submitting a QA review and who sees it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from helpdesk import roles
from helpdesk.errors import DomainError
from helpdesk.models import WebhookDelivery, WebhookEndpoint
from qa.models import Review, Scorecard
from qa.services import submit_review

from ..factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(iris, alice) -> Review:
    return Review.objects.create(
        ticket=TicketFactory(assignee=alice, status="solved"), agent=alice, inspector=iris,
        scorecard_version=Scorecard.objects.get(slug="standard").versions.get(number=1),
    )


def all_full(review, **overrides):
    scores = {c.code: (c.max_points, "") for c in review.scorecard_version.criteria.all()}
    return scores | overrides


def test_an_inspector_submits_and_the_score_is_computed(review, iris):
    WebhookEndpoint.objects.create(name="hr", url="https://hr.example.com/qa", events=["qa.review.completed"])
    scores = all_full(review, solution=(1, "方案不完整"), initiative=(None, ""), identity_check=(None, ""))
    done = submit_review(review=review, scores=scores, strengths="礼貌", shortcomings="方案", coaching="多确认", actor=iris)
    # weights: 20 in all, minus initiative (1) and identity_check (2) N/A = 17; solution (3) at half: 15.5/17
    assert done.score == Decimal("91.18") and done.status == "submitted"
    assert done.scores.get(criterion__code="solution").comment == "方案不完整"
    assert WebhookDelivery.objects.get().payload["data"]["score"] == "91.18"


def test_a_privacy_failure_zeroes_the_review(review, iris):
    assert submit_review(review=review, scores=all_full(review, privacy=(0, "泄露手机号")), actor=iris).score == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [({"solution": (3, "")}, "scores.solution"), ({"privacy": (None, "")}, "scores.privacy"), ({"nope": (1, "")}, "scores.nope")],
)
def test_bad_scores_are_refused_naming_the_criterion(review, iris, change, field):
    with pytest.raises(DomainError) as error:
        submit_review(review=review, scores=all_full(review, **change), actor=iris)
    assert error.value.field == field
    review.refresh_from_db()
    assert review.status == "assigned" and not review.scores.exists()


def test_a_missing_criterion_is_refused(review, iris):
    scores = all_full(review)
    del scores["greeting"]
    with pytest.raises(DomainError) as error:
        submit_review(review=review, scores=scores, actor=iris)
    assert error.value.field == "scores.greeting"


def test_only_the_assigned_inspector_submits_and_only_once(review, iris, db):
    other = Group.objects.get(name=roles.QA_INSPECTOR).user_set.create(username="ivan")
    with pytest.raises(DomainError):
        submit_review(review=review, scores=all_full(review), actor=other)
    submit_review(review=review, scores=all_full(review), actor=iris)
    with pytest.raises(DomainError):
        submit_review(review=review, scores=all_full(review), actor=iris)


def test_through_the_api_an_inspector_works_their_queue(client, review, iris):
    client.force_login(iris)
    queue = client.get("/api/v1/qa/reviews/", {"mine": "true", "status": "assigned"}).json()["results"]
    assert [r["id"] for r in queue] == [review.pk]
    body = {"scores": [{"criterion": c, "points": p} for c, (p, _) in all_full(review).items()], "strengths": "好"}
    response = client.post(f"/api/v1/qa/reviews/{review.pk}/submit", body, content_type="application/json")
    assert response.status_code == 200 and response.json()["score"] == "100.00"
    assert len(response.json()["scores"]) == 14
    bad = client.post(f"/api/v1/qa/reviews/{review.pk}/submit", {"scores": "x"}, content_type="application/json")
    assert bad.status_code == 400 and any(name.startswith("scores") for name in bad.json()["error"]["fields"])


def test_an_agent_sees_only_their_own_submitted_reviews(client, review, iris, alice, bob):
    client.force_login(alice.user)
    assert client.get("/api/v1/qa/reviews/").json()["results"] == []  # not submitted yet
    submit_review(review=review, scores=all_full(review), actor=iris)
    assert [r["id"] for r in client.get("/api/v1/qa/reviews/").json()["results"]] == [review.pk]
    client.force_login(bob.user)
    assert client.get("/api/v1/qa/reviews/").json()["results"] == []
    assert client.get(f"/api/v1/qa/reviews/{review.pk}/").status_code == 404
