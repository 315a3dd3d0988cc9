"""The rate limits of the API (``abuse.py``) and of the board's pairing
approvals (``pairing/api.py``): token buckets by key, each held as one
number in the table that every worker process shares (``bucket_table``).

A bucket of ``count`` tokens, refilled at one token every ``interval``, is
kept as the time at which it will be full again (``full_at``; the
"theoretical arrival time" of the generic cell rate algorithm). Then
``(now + count x interval - full_at) / interval`` tokens are in it, so one
request may go when ``full_at + interval <= now + count x interval``, and
going moves ``full_at`` on by one interval. One number per bucket is what
lets the table update a bucket with one small write, and a bucket whose
``full_at`` has passed is full: its slot is free for another key with
nothing to clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from psp_server.api.guards.bucket_table import BucketTable
from psp_server.runtime.config import Rate

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Shape:
    """A rate in whole nanoseconds: the interval between two tokens and the
    burst; integers, so that ``count`` tokens taken at once add up to exactly
    ``count`` intervals."""

    interval_ns: int
    count: int

    def __post_init__(self) -> None:
        if self.interval_ns < 1 or self.count < 1:
            raise ValueError(f"a bucket holds 1 token or more, refilled in 1 ns or more: {self}")

    @classmethod
    def of(cls, rate: Rate) -> Shape:
        return cls(max(1, round(rate.period * NS / rate.count)), rate.count)


def spend(full_at: int, now: int, shape: Shape) -> tuple[int, int]:
    """One request on a bucket that is full at ``full_at`` (ns, on the clock
    of ``now``): ``(the new full_at, 0)`` when it may go, or ``(full_at,
    wait)`` with the nanoseconds until it may, spending nothing.

    ``full_at`` is believed only between ``now`` (a bucket is never fuller
    than full) and ``now + count x interval`` (nor emptier than empty): a
    slot left half written by a worker killed in the middle of its update,
    or written for another limit, counts as at most one full or one empty
    bucket, never as a wait longer than the limit's own period."""
    empty_at = now + shape.count * shape.interval_ns
    full_at = min(max(full_at, now), empty_at)
    after = full_at + shape.interval_ns
    if after <= empty_at:
        return after, 0
    return full_at, after - empty_at


class RateLimiter:
    """One limit (``name``, like ``pay/token``) on its rate: ``take(key)``
    spends one token of ``key``'s bucket and returns 0.0, or returns how many
    seconds until one is there and spends nothing. The buckets are the
    table's, so every process that shares the table shares the limit."""

    def __init__(self, name: str, rate: Rate, table: BucketTable) -> None:
        self.name = name
        self.rate = rate
        self.shape = Shape.of(rate)
        self._table = table
        self._prefix = name.encode() + b"\0"

    def take(self, key: str) -> float:
        return self._table.update(self._prefix + key.encode(), self.shape, spend) / NS
