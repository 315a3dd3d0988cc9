"""Now, in milliseconds since the epoch, as a value handed to whoever judges
time: expiry, countdowns, cookies and pairings ask the clock they were
given, so that a test moves time instead of waiting for it.

``SYSTEM_CLOCK`` is the system's. ``MONOTONIC_CLOCK`` counts from an
arbitrary point and is never set: for lengths of time that a step of the
wall clock must not stretch or cut (the rate limits' buckets; on Linux it
is the whole machine's, so every process reads the same). A ``MovableClock`` is the system's moved
by an offset: it keeps running, so that what times itself in real time
(timeouts, rate limits, a browser's countdown) still sees time pass, and a
test steps it over an expiry with ``advance``.

A ``Deadline`` is a time limit on what is believed for a while (a cache's
entry, the pause between two fetches): judged on a clock and on the
system's monotonic clock both, so that a test ends it by moving its clock
while a wall clock set back cannot make it last longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, Protocol, final

from .timefmt import now_ms as _system_now_ms


class Clock(Protocol):
    def now_ms(self) -> int: ...


@final
class SystemClock:
    __slots__ = ()

    def now_ms(self) -> int:
        return _system_now_ms()


SYSTEM_CLOCK: Final = SystemClock()


@final
class MonotonicClock:
    __slots__ = ()

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


MONOTONIC_CLOCK: Final = MonotonicClock()


class MovableClock:
    """``base`` moved by ``offset_ms``: set wrong from the start (ahead or
    behind, as a machine's clock can be), it then only goes forward, so
    that what has been judged past stays past."""

    __slots__ = ("_base", "offset_ms")

    def __init__(self, base: Clock = SYSTEM_CLOCK, *, offset_ms: int = 0) -> None:
        self._base = base
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return self._base.now_ms() + self.offset_ms

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError(f"a clock moves forward only, not by {ms} ms")
        self.offset_ms += ms

    def advance_to(self, at_ms: int) -> None:
        """Moves on until ``now_ms()`` is at least ``at_ms`` (no further
        when it is already)."""
        self.advance(max(0, at_ms - self.now_ms()))


@final
@dataclass(frozen=True, slots=True)
class Deadline:
    """Passed once either clock has gone the limit's length past where it
    was set: ``at_ms`` on the ``Clock`` that set it, ``monotonic_ns`` on
    ``time.monotonic_ns()``. The monotonic clock alone would keep a test
    waiting; the wall clock alone would let a step back (NTP, a hand, a Pi
    booting with the time it last saved) keep a revoked key believed for
    as long as the step. Whichever comes first: a step forward only ends
    the limit early, which costs one more look-up."""

    at_ms: int
    monotonic_ns: int

    @classmethod
    def after(cls, ms: int, clock: Clock) -> Deadline:
        if ms < 0:
            raise ValueError(f"a time limit lasts 0 ms or more, not {ms} ms")
        return cls(clock.now_ms() + ms, time.monotonic_ns() + ms * 1_000_000)

    def passed(self, clock: Clock) -> bool:
        """``clock``: the one that set it."""
        return clock.now_ms() >= self.at_ms or time.monotonic_ns() >= self.monotonic_ns
