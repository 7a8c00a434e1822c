"""Exponential backoff with full jitter inside a time budget (pure: the caller sleeps)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """After attempt n (0-based) wait uniform(0, min(cap, base * 2**n)) seconds, unless that wait
    would end past `budget` seconds since the first attempt: then give up (None)."""

    budget: float = 10.0
    base: float = 0.05
    cap: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def next_delay(self, attempt: int, elapsed: float) -> float | None:
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 32)))
        delay = self.rng.uniform(0, ceiling)
        if elapsed + delay >= self.budget:
            return None
        return delay
