"""Token buckets by key, with bounded memory: the rate limits of the API
(``abuse.py``) and of the board's pairing approvals (``pairing/api.py``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from psp_server.runtime.config import Rate

MAX_BUCKETS = 10_000


class RateLimiter:
    """Token buckets by key, at most ``max_keys`` of them (least recently used
    goes first). ``take`` spends one token and returns 0.0, or returns how many
    seconds until one is there and spends nothing."""

    def __init__(
        self,
        rate: Rate,
        *,
        max_keys: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(rate.count)
        self.per_second = rate.count / rate.period
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        now = self._clock()
        held = self._buckets.pop(key, None)
        if held is None:
            tokens = self.capacity
            while len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
        else:
            tokens = min(self.capacity, held[0] + (now - held[1]) * self.per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.per_second
