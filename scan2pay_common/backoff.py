"""Reconnect delays: exponential, capped, and jittered (each delay is drawn
from the upper half of its range) so that a hundred terminals that lost the
broker together do not come back together."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self._attempt)
        if ceiling < self.maximum:
            # Stop counting once capped: a long outage must not overflow.
            self._attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
