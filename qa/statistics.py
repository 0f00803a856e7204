"""Small-sample statistics for QA reports, pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import mean, stdev

# Two-sided 95% quantiles of Student's t by degrees of freedom; beyond 30 the normal 1.96.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_with_interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of a 95% t-interval: wide for a handful of reviews, as it should be.

    One value has a mean and no interval; none has neither.
    """
    if not values:
        return None, None, None
    centre = mean(values)
    if len(values) < 2:
        return centre, None, None
    df = len(values) - 1
    t = _T95[df - 1] if df <= len(_T95) else 1.96
    half = t * stdev(values) / math.sqrt(len(values))
    return centre, max(0.0, centre - half), min(100.0, centre + half)
