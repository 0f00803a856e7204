"""The daily sample, pure: which conversations to draw from a day's population.

Stratified by agent: every agent with a conversation that day gets at least one drawn, the
rest is spread in proportion to their volume (largest remainders), and a seeded generator
picks inside each agent's conversations, so the same seed and population give the same sample.
Agents and conversations are ordered by stable keys (a username, a conversation's creation
time and external id) before drawing, never by database ids or row order: the same population
restored on another database, or inserted in another order, gives the same sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)  # an agent's stable key (sortable)
T = TypeVar("T")  # a conversation's stable key (sortable)


def sample_size(population: int, rate: Decimal) -> int:
    return min(population, math.ceil(population * rate)) if population else 0


def allocate(sizes: Mapping[K, int], total: int) -> dict[K, int]:
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


def draw(population: Mapping[Any, Sequence[T]], rate: Decimal, seed: int) -> list[T]:
    """Keys drawn from {agent key: conversation keys}; sorted, so a run can be compared.

    Only the keys' order matters, never the mapping's or the sequences' order: both are sorted
    before the generator draws, so the keys must be stable (not database ids) to be reproducible.
    """
    total = sample_size(sum(len(ids) for ids in population.values()), rate)
    quota = allocate({agent: len(ids) for agent, ids in population.items()}, total)
    generator = random.Random(seed)
    drawn: list[int] = []
    for agent in sorted(quota):
        drawn.extend(generator.sample(sorted(population[agent]), quota[agent]))
    return sorted(drawn)
