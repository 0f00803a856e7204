"""Inter-rater agreement for calibrations, pure: Fleiss' kappa and how far each inspector strays.

Fleiss' kappa, for N conversations each scored by the same n inspectors into k categories
(the points 0..max, and N/A as a category of its own), with n_ij the number of inspectors who
put conversation i into category j:

    P_i  = (Σ_j n_ij² − n) / (n (n − 1))        agreement on conversation i
    P̄    = (1/N) Σ_i P_i                        observed agreement
    p_j  = Σ_i n_ij / (N n)                      share of category j
    P̄e   = Σ_j p_j²                              agreement expected by chance
    κ    = (P̄ − P̄e) / (1 − P̄e)

κ = 1 is full agreement, 0 what chance alone gives; below 0.4 the criterion is flagged. When
every score falls in one category, P̄e = 1 and κ is undefined: that is full agreement, shown as 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean, pstdev

LOW_AGREEMENT = 0.4
FAR_FROM_GROUP = 10.0  # points of the 0-100 score


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """κ for a table of counts: a row per conversation, a column per category."""
    if not table:
        raise ValueError("no conversations")
    raters = sum(table[0])
    if raters < 2 or any(sum(row) != raters for row in table):
        raise ValueError("every conversation needs the same number of raters, at least two")
    subjects = len(table)
    p_i = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in table]
    p_bar = sum(p_i) / subjects
    shares = [sum(row[j] for row in table) / (subjects * raters) for j in range(len(table[0]))]
    expected = sum(p * p for p in shares)
    if expected >= 1:
        return 1.0
    return (p_bar - expected) / (1 - expected)


def rater_deviation(scores: dict[int, dict[int, float]]) -> dict[int, float]:
    """{inspector: mean absolute distance of their total scores from each conversation's group mean}."""
    by_ticket: dict[int, dict[int, float]] = {}
    for inspector, per_ticket in scores.items():
        for ticket, score in per_ticket.items():
            by_ticket.setdefault(ticket, {})[inspector] = score
    return {
        inspector: mean(abs(score - mean(by_ticket[ticket].values())) for ticket, score in per_ticket.items())
        for inspector, per_ticket in scores.items()
        if per_ticket
    }


def spread(scores: Sequence[float]) -> float:
    """The population standard deviation of one conversation's total scores."""
    return pstdev(scores) if len(scores) > 1 else 0.0
