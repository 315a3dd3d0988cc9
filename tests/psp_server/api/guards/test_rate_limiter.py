"""The token bucket as one number (psp_server/api/guards/rate_limiter.py):
its arithmetic, pure, and the limiters on a table, on a clock the test
moves (the buckets' storage itself: test_bucket_table.py)."""

from __future__ import annotations

import pytest

from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.rate_limiter import NS, RateLimiter, Shape, spend
from psp_server.runtime.config import Rate
from tests.support.stopped_clock import stopped_clock

# spend(), pure.

TEN_S = Shape(10 * NS, 3)  # 3 at once, then one every 10 s
NOW = 5_000 * NS


def take_many(full_at: int, now: int, shape: Shape, times: int) -> tuple[int, list[int]]:
    waits = []
    for _ in range(times):
        full_at, wait = spend(full_at, now, shape)
        waits.append(wait)
    return full_at, waits


def test_a_new_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    full_at, waits = take_many(0, NOW, TEN_S, 4)
    assert waits == [0, 0, 0, 10 * NS]
    assert full_at == NOW + 30 * NS  # empty: full again in 3 intervals


def test_a_refused_request_spends_nothing_and_the_bucket_refills_at_its_rate() -> None:
    full_at, _ = take_many(0, NOW, TEN_S, 3)
    assert spend(full_at, NOW + 4 * NS, TEN_S) == (full_at, 6 * NS)
    assert spend(full_at, NOW + 4 * NS, TEN_S) == (full_at, 6 * NS)
    full_at, wait = spend(full_at, NOW + 10 * NS, TEN_S)
    assert wait == 0
    assert spend(full_at, NOW + 10 * NS, TEN_S)[1] == 10 * NS


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    full_at, _ = take_many(0, NOW, TEN_S, 3)
    later = NOW + 1000 * NS
    _, waits = take_many(full_at, later, TEN_S, 4)
    assert waits == [0, 0, 0, 10 * NS]


@pytest.mark.parametrize("damaged", [2**62, NOW + 10_000 * NS, -(2**62), 0, 1])
def test_a_damaged_bucket_counts_as_at_most_one_empty_or_full_bucket(damaged: int) -> None:
    """What a worker killed in the middle of writing a slot may leave: never
    a wait longer than one interval, nor more than one burst."""
    full_at, waits = take_many(damaged, NOW, TEN_S, 4)
    assert all(wait <= TEN_S.interval_ns for wait in waits)
    assert waits.count(0) <= TEN_S.count
    assert NOW <= full_at <= NOW + TEN_S.count * TEN_S.interval_ns


@pytest.mark.parametrize(
    ("rate", "shape"),
    [
        (Rate(3, 30.0), Shape(10 * NS, 3)),
        (Rate(3000, 60.0), Shape(20_000_000, 3000)),
        (Rate(30, 3600.0), Shape(120 * NS, 30)),
        (Rate(1_000_000, 0.001), Shape(1, 1_000_000)),  # the fastest rate settings allow
    ],
)
def test_a_rate_becomes_whole_nanoseconds(rate: Rate, shape: Shape) -> None:
    assert Shape.of(rate) == shape


def test_a_shape_that_holds_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="1 token or more"):
        Shape(0, 3)
    with pytest.raises(ValueError, match="1 token or more"):
        Shape(NS, 0)


# Limiters on a table.


def test_a_limiter_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = stopped_clock()
    limiter = RateLimiter("qr/ip", Rate(3, 30.0), BucketTable.in_process(clock=clock))
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 10.0
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.advance(4_000)
    assert limiter.take("a") == 6.0  # a refused request costs nothing
    clock.advance(6_000)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 10.0
    clock.advance(1_000_000)  # an idle bucket refills to its burst, no further
    assert [limiter.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 10.0]


def test_limits_on_one_table_keep_their_buckets_apart() -> None:
    table = BucketTable.in_process(clock=stopped_clock())
    per_ip = RateLimiter("pay/ip", Rate(1, 60.0), table)
    per_token = RateLimiter("pay/token", Rate(1, 60.0), table)
    assert per_ip.take("ip:127.0.0.1") == 0.0
    assert per_token.take("ip:127.0.0.1") == 0.0  # the same key, another limit
    assert per_ip.take("ip:127.0.0.1") == 60.0
    assert per_token.take("ip:127.0.0.1") == 60.0


def test_two_limiters_of_one_name_on_one_table_are_one_limit() -> None:
    """As in two workers: each builds its own limiter, on the shared table."""
    table = BucketTable.in_process(clock=stopped_clock())
    first, second = (RateLimiter("qr/ip", Rate(4, 60.0), table) for _ in range(2))
    waits = [limiter.take("ip:10.0.0.1") for _ in range(3) for limiter in (first, second)]
    assert waits.count(0.0) == 4
