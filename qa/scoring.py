"""A review's score from its criterion scores, pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Scored:
    weight: Decimal
    max_points: int
    critical: bool
    points: int | None  # None: N/A


def review_score(items: Iterable[Scored]) -> Decimal | None:
    """The weighted mean of points/max over the criteria scored, as 0-100 with two decimals.

    N/A criteria leave both sums; a critical criterion at 0 points makes the review 0; a
    review with every criterion N/A has no score (None).
    """
    earned = possible = Decimal(0)
    for item in items:
        if item.points is None:
            continue
        if item.critical and item.points == 0:
            return Decimal("0.00")
        earned += item.weight * Decimal(item.points) / Decimal(item.max_points)
        possible += item.weight
    if not possible:
        return None
    return (earned / possible * HUNDRED).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
