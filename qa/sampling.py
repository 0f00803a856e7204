"""The daily sample, pure: which conversations to draw from a day's population.

Stratified by agent: every agent with a conversation that day gets at least one drawn, the
rest is spread in proportion to their volume (largest remainders), and a seeded generator
picks inside each agent's conversations, so the same seed and population give the same sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal


def sample_size(population: int, rate: Decimal) -> int:
    return min(population, math.ceil(population * rate)) if population else 0


def allocate(sizes: Mapping[int, int], total: int) -> dict[int, int]:
    """How many to draw per agent: at least one each, the rest proportional, never above their count."""
    agents = sorted(sizes)
    quota = {agent: 1 for agent in agents if sizes[agent] > 0}
    left = max(total - len(quota), 0)
    spare = {agent: sizes[agent] - 1 for agent in quota}
    spare_total = sum(spare.values())
    if left and spare_total:
        shares = {agent: left * spare[agent] / spare_total for agent in quota}
        floors = {agent: min(int(share), spare[agent]) for agent, share in shares.items()}
        for agent, n in floors.items():
            quota[agent] += n
        remainder = left - sum(floors.values())
        by_remainder = sorted(quota, key=lambda a: (-(shares[a] - floors[a]), a))
        for agent in by_remainder:
            if remainder == 0:
                break
            if quota[agent] < sizes[agent]:
                quota[agent] += 1
                remainder -= 1
    return quota


def draw(population: Mapping[int, Sequence[int]], rate: Decimal, seed: int) -> list[int]:
    """Ticket ids drawn from {agent id: ticket ids}; sorted, so a run can be compared."""
    total = sample_size(sum(len(ids) for ids in population.values()), rate)
    quota = allocate({agent: len(ids) for agent, ids in population.items()}, total)
    generator = random.Random(seed)
    drawn: list[int] = []
    for agent in sorted(quota):
        drawn.extend(generator.sample(sorted(population[agent]), quota[agent]))
    return sorted(drawn)
