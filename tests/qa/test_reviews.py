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
    from helpdesk.models import Notification

    note = Notification.objects.get(kind="qa_review")  # the written result goes back to the agent
    assert note.recipient == review.agent.user and "91.18" in note.text


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


# --- feedback and disputes --------------------------------------------------------------------


@pytest.fixture
def submitted(review, iris) -> Review:
    return submit_review(review=review, scores=all_full(review, solution=(0, "方案错误")), shortcomings="方案错误", actor=iris)


def test_the_agent_acknowledges_their_review(client, submitted, alice):
    client.force_login(alice.user)
    response = client.post(f"/api/v1/qa/reviews/{submitted.pk}/acknowledge")
    assert response.status_code == 200 and response.json()["acknowledged_at"] is not None
    disputed = client.post(f"/api/v1/qa/reviews/{submitted.pk}/dispute", {"reason": "x"}, content_type="application/json")
    assert disputed.status_code == 409


def test_a_dispute_is_amended_by_the_team_lead_and_the_score_recomputed(client, submitted, alice, lena, bob):
    client.force_login(alice.user)
    response = client.post(f"/api/v1/qa/reviews/{submitted.pk}/dispute", {"reason": "方案是主管确认过的"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["dispute"]["status"] == "open"
    assert client.post(f"/api/v1/qa/reviews/{submitted.pk}/dispute", {"reason": "再次"}, content_type="application/json").status_code == 409
    # an agent cannot decide their own dispute; a lead of another team cannot either
    body = {"outcome": "amend", "comment": "确认方案正确", "scores": [{"criterion": "solution", "points": 2}]}
    assert client.post(f"/api/v1/qa/reviews/{submitted.pk}/resolve-dispute", body, content_type="application/json").status_code == 403
    client.force_login(lena.user)
    response = client.post(f"/api/v1/qa/reviews/{submitted.pk}/resolve-dispute", body, content_type="application/json")
    assert response.status_code == 200
    result = response.json()
    assert result["score"] == "100.00" and result["dispute"]["status"] == "amended"
    assert result["dispute"]["original_score"] == "85.00"
    submitted.refresh_from_db()
    assert submitted.history.filter(history_change_reason="dispute_amended").exists()


def test_a_lead_upholds_a_dispute_with_a_comment(submitted, alice, lena):
    from qa.services import dispute_review, resolve_dispute

    dispute = dispute_review(review=submitted, reason="不认同", actor=alice.user)
    with pytest.raises(DomainError) as error:
        resolve_dispute(dispute=dispute, uphold=True, comment=" ", actor=lena.user)
    assert error.value.field == "comment"
    resolved = resolve_dispute(dispute=dispute, uphold=True, comment="扣分合理", actor=lena.user)
    assert resolved.status == "upheld" and Review.objects.get(pk=submitted.pk).score == Decimal("85.00")


def test_disputes_open_longer_than_3_business_days_are_flagged(submitted, alice):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from qa.queries import overdue_disputes
    from qa.services import dispute_review

    dispute = dispute_review(review=submitted, reason="不认同", actor=alice.user)
    opened = datetime(2026, 11, 20, 10, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Friday
    type(dispute).objects.filter(pk=dispute.pk).update(opened_at=opened)
    assert not overdue_disputes(now=datetime(2026, 11, 25, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))).exists()  # Mon, Tue, part of Wed
    assert overdue_disputes(now=datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))).exists()


def test_a_lead_upholds_from_the_admin_and_sees_overdue_disputes(client, submitted, alice, lena):
    from django.urls import reverse

    from qa.models import Dispute
    from qa.services import dispute_review

    dispute = dispute_review(review=submitted, reason="不认同", actor=alice.user)
    client.force_login(lena.user)
    url = reverse("admin:qa_dispute_changelist")
    assert client.get(url, {"overdue": "1"}).context["cl"].result_list.count() == 0
    response = client.post(url, {"action": "uphold", "_selected_action": [dispute.pk], "apply": "1", "comment": "扣分合理"})
    assert response.status_code == 302
    assert Dispute.objects.get(pk=dispute.pk).status == "upheld"


def test_editing_a_scorecard_in_use_makes_a_new_version_and_past_reviews_keep_theirs(client, submitted, ada):
    from django.urls import reverse

    from qa.services import new_scorecard_version

    old = submitted.scorecard_version
    client.force_login(ada)
    page = client.get(reverse("admin:qa_scorecardversion_change", args=[old.pk])).content.decode()
    assert 'name="criteria-0-title"' not in page  # in use: read-only
    version = new_scorecard_version(scorecard=old.scorecard)
    assert version.number == 2 and version.criteria.count() == old.criteria.count()
    version.criteria.filter(code="greeting").update(weight=Decimal("5"))
    assert old.criteria.get(code="greeting").weight == 1
    assert Review.objects.get(pk=submitted.pk).score == Decimal("85.00")
    page = client.get(reverse("admin:qa_scorecardversion_change", args=[version.pk])).content.decode()
    assert 'name="criteria-0-title"' in page  # not used yet: editable
