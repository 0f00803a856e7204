"""Calibration: blind scoring by several inspectors and the agreement report."""

from __future__ import annotations

import pytest

from qa.calibration import fleiss_kappa, rater_deviation

# Fleiss (1971) as reproduced in the literature: 10 subjects, 14 raters, 5 categories, κ = 0.210.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_published_example():
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.210, abs=0.001)


def test_full_agreement_is_1_and_chance_is_about_0():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == 1.0
    assert fleiss_kappa([[3, 0, 0], [3, 0, 0]]) == 1.0  # all in one category: undefined, shown as agreement
    assert fleiss_kappa([[1, 1], [1, 1], [1, 1], [1, 1]]) < 0


def test_a_table_with_uneven_raters_is_refused():
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 1], [1, 1]])


def test_an_inspector_far_from_the_group_stands_out():
    deviation = rater_deviation({1: {10: 80, 11: 90}, 2: {10: 82, 11: 88}, 3: {10: 50, 11: 60}})
    assert deviation[3] > 15 > deviation[1]


@pytest.fixture
def three_inspectors(make_inspectors):
    return make_inspectors("cal", 3)


@pytest.mark.django_db
def test_a_calibration_is_scored_blind_and_reported_with_kappa(client, ada, alice, three_inspectors):
    from django.urls import reverse

    from qa.models import Calibration, Review, Scorecard
    from qa.queries import calibration_report, reviews_visible_to
    from qa.services import submit_review

    from ..factories import MessageFactory, TicketFactory

    tickets = [TicketFactory(assignee=alice, status="solved") for _ in range(3)]
    for ticket in tickets:
        MessageFactory(ticket=ticket, author_kind="agent", author_agent=alice, body="您好")
    version = Scorecard.objects.get(slug="standard").versions.get()
    client.force_login(ada)
    response = client.post(reverse("admin:qa_calibration_add"), {
        "name": "十一月校准", "scorecard_version": version.pk, "tickets": " ".join(t.reference for t in tickets),
        "inspectors": [p.pk for p in three_inspectors],
    })
    assert response.status_code == 302
    calibration = Calibration.objects.get()
    assert calibration.reviews.count() == 9
    first = calibration.reviews.filter(inspector=three_inspectors[0]).first()
    client.force_login(three_inspectors[0])
    page = client.get(reverse("admin:qa_review_score", args=[first.pk])).content.decode()
    assert "Alice" not in page  # blind: the agent is not named
    assert calibration_report(calibration) == {"expected": 9, "submitted": 0, "complete": False}
    for review in calibration.reviews.all():
        scores = {c.code: (c.max_points, "") for c in version.criteria.all()}
        if review.inspector == three_inspectors[2]:
            scores["solution"] = scores["completeness"] = (0, "")  # the odd one out, on two criteria
        submit_review(review=review, scores=scores, actor=review.inspector)
    report = calibration_report(calibration)
    by_code = {c["code"]: c for c in report["criteria"]}
    assert by_code["greeting"]["kappa"] == 1.0 and not by_code["greeting"]["low"]
    assert by_code["solution"]["low"]  # everyone agrees on nothing there
    far = {i["username"]: i["far"] for i in report["inspectors"]}
    assert far == {"cal0": False, "cal1": False, "cal2": True}
    assert all(t["spread"] > 0 for t in report["tickets"])
    assert not reviews_visible_to(alice.user).exists()  # calibration never counts for the agent
    client.force_login(ada)
    assert "Fleiss" in client.get(reverse("admin:qa_calibration_change", args=[calibration.pk])).content.decode()
    assert Review.objects.filter(calibration=calibration, status="submitted").count() == 9


@pytest.mark.django_db
def test_a_calibration_needs_two_inspectors_and_agents(client, ada, alice, three_inspectors):
    from django.urls import reverse

    from qa.models import Calibration, Scorecard

    from ..factories import TicketFactory

    version = Scorecard.objects.get(slug="standard").versions.get()
    client.force_login(ada)
    page = client.post(reverse("admin:qa_calibration_add"), {
        "name": "x", "scorecard_version": version.pk, "tickets": TicketFactory(assignee=None).reference,
        "inspectors": [three_inspectors[0].pk],
    })
    assert page.status_code == 200 and not Calibration.objects.exists()
    errors = page.context["adminform"].form.errors
    assert "tickets" in errors and "inspectors" in errors
