"""Draw training prompts from several sources by weight, resumably.

Each draw picks a source with probability proportional to its weight, then the source's next
record in an epoch-wise shuffle, so no record repeats before its source is used up. Every random
choice is derived from the seed and a counter (draw number; source, epoch), never from a running
generator, so the whole sampler state is a few integers: a resumed run asks for draw N+1 and gets
exactly what an uninterrupted run would have got, without storing or replaying anything.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# Distinguishes the source-choice stream from the per-source shuffles derived from the same seed.
_CHOICE_STREAM = 2**32 - 1


class MixtureSampler:
    """`sources`: (records, weight) pairs; weights are relative and must be positive."""

    def __init__(self, sources: list[tuple[list[dict], float]], seed: int):
        if not sources:
            raise ValueError("a mixture needs at least one source")
        for i, (records, weight) in enumerate(sources):
            if not records:
                raise ValueError(f"mixture source {i} has no records")
            if not weight > 0:
                raise ValueError(f"mixture source {i} has weight {weight}; weights must be > 0")
        self._records = [records for records, _ in sources]
        weights = np.array([w for _, w in sources], dtype=np.float64)
        self._cumulative = np.cumsum(weights / weights.sum())
        self._seed = seed % 2**63  # SeedSequence takes non-negative entropy only
        self._drawn = 0
        self._taken = [0] * len(sources)
        self._orders: dict[tuple[int, int], np.ndarray] = {}  # cache of (source, epoch) shuffles

    def sample(self, n: int) -> list[dict]:
        """The next `n` records (shallow copies, so callers may annotate them freely)."""
        batch = []
        for _ in range(n):
            source = self._choose_source(self._drawn)
            batch.append(dict(self._records[source][self._next_index(source)]))
            self._drawn += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self._seed, "drawn": self._drawn, "taken": list(self._taken),
                "sizes": [len(r) for r in self._records]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; the sources must be the same ones, in the same order."""
        sizes = [len(r) for r in self._records]
        if state["sizes"] != sizes or state["seed"] != self._seed:
            raise ValueError(f"sampler state is for sources of sizes {state['sizes']} and seed "
                             f"{state['seed']}, but this mixture has sizes {sizes} and seed "
                             f"{self._seed}: the data or seed changed since the checkpoint")
        self._drawn = state["drawn"]
        self._taken = list(state["taken"])

    def _choose_source(self, draw: int) -> int:
        u = np.random.default_rng([self._seed, _CHOICE_STREAM, draw]).random()
        return min(int(np.searchsorted(self._cumulative, u, side="right")), len(self._records) - 1)

    def _next_index(self, source: int) -> int:
        epoch, position = divmod(self._taken[source], len(self._records[source]))
        self._taken[source] += 1
        key = (source, epoch)
        if key not in self._orders:
            self._orders = {k: v for k, v in self._orders.items() if k[0] != source}
            rng = np.random.default_rng([self._seed, source, epoch])
            self._orders[key] = rng.permutation(len(self._records[source]))
        return int(self._orders[key][position])


def mix_with_replay(current: list[tuple[list[dict], float]],
                    previous: list[tuple[list[dict], float]] | None,
                    share: float) -> list[tuple[list[dict], float]]:
    """Weights rescaled so the previous stage's sources together get `share` of the draws and
    the current ones the rest; relative weights within each group are kept. QwQ's stage two
    keeps some stage-one (math, code) data so those skills do not regress."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"replay share must be in [0, 1), got {share}")
    if not previous or share == 0.0:
        return list(current)
    return _scaled(current, 1.0 - share) + _scaled(previous, share)


Sources = list[tuple[list[dict], float]]


def _scaled(sources: Sources, total: float) -> Sources:
    weight_sum = sum(w for _, w in sources)
    return [(records, total * w / weight_sum) for records, w in sources]
