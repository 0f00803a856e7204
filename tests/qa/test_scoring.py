"""A review's score: weighted mean over the criteria scored, N/A out of both sums, critical failure zero."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from qa.scoring import Scored, review_score


def item(points, weight="1", max_points=2, critical=False):
    return Scored(weight=Decimal(weight), max_points=max_points, critical=critical, points=points)


def test_weights_count():
    # 2/2 on a weight-3 criterion and 0/2 on a weight-1: 3 of 4 = 75
    assert review_score([item(2, "3"), item(0, "1")]) == Decimal("75.00")


def test_na_leaves_both_sums():
    assert review_score([item(2), item(None, "5"), item(1)]) == Decimal("75.00")


def test_a_failed_critical_criterion_zeroes_the_review():
    assert review_score([item(2, "10"), item(0, critical=True)]) == Decimal("0.00")
    assert review_score([item(2, "10"), item(None, critical=True)]) == Decimal("100.00")  # N/A is not a failure


def test_all_na_has_no_score():
    assert review_score([item(None), item(None)]) is None


scored = st.builds(
    Scored,
    weight=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2),
    max_points=st.integers(1, 10),
    critical=st.just(False),
    points=st.none(),
).flatmap(lambda s: st.builds(Scored, weight=st.just(s.weight), max_points=st.just(s.max_points), critical=st.booleans(),
                                points=st.one_of(st.none(), st.integers(0, s.max_points))))


@given(st.lists(scored, max_size=15))
def test_the_score_is_between_0_and_100(items):
    score = review_score(items)
    if all(i.points is None for i in items):
        assert score is None
    else:
        assert Decimal(0) <= score <= Decimal(100)
        if any(i.critical and i.points == 0 for i in items):
            assert score == 0


@given(st.lists(scored, min_size=1, max_size=15), st.integers(1, 5))
def test_scaling_every_weight_changes_nothing(items, factor):
    scaled = [Scored(i.weight * factor, i.max_points, i.critical, i.points) for i in items]
    assert review_score(scaled) == review_score(items)
