"""A clock that stands still until the test moves it: a ``MovableClock``
on a base that never runs, for logic judged on a clock down to the
nanosecond (the rate limits' buckets), where a running clock would make
the figures drift by the time the test itself took."""

from __future__ import annotations

from scan2pay_common.clock import MovableClock

START_MS = 1_000_000


class _StandingStill:
    def now_ms(self) -> int:
        return START_MS


def stopped_clock() -> MovableClock:
    return MovableClock(_StandingStill())
