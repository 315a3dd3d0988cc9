"""When a failed webhook delivery is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Past this many doublings every delay is capped anyway; stopping here keeps
# base * 2**n a float.
_MAX_DOUBLINGS = 60


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n failed: the next one follows ``base * 2**(n-1)`` seconds
    later, capped at ``maximum``, less up to ``jitter`` of it at random (so
    that endpoints that failed together are not retried together). Retries
    go on while the failure came less than ``window`` seconds after the
    first attempt; so the last attempt is at least ``window`` after it."""

    base: float = 10.0
    maximum: float = 3600.0
    window: float = 86_400.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        doublings = min(max(attempt, 1) - 1, _MAX_DOUBLINGS)
        ceiling = min(self.maximum, self.base * 2.0**doublings)
        return ceiling * (1.0 - self.jitter * rng.random())

    def delay_ms(self, attempt: int, rng: random.Random) -> int:
        return max(1, round(self.delay(attempt, rng) * 1000))

    @property
    def window_ms(self) -> int:
        return round(self.window * 1000)
