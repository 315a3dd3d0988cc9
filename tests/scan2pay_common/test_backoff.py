"""scan2pay_common.backoff: exponential, capped reconnect delays with jitter."""

from __future__ import annotations

import random

import pytest

from scan2pay_common.backoff import Backoff

# Default Backoff(): initial 0.1, factor 2, maximum 10.
CEILINGS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0, 10.0]


class _Top(random.Random):
    """Always draws the top of the range, so a delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class _Bottom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_defaults() -> None:
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum, backoff.factor) == (0.1, 10.0, 2.0)


def test_ceilings_grow_by_the_factor_up_to_the_maximum() -> None:
    backoff = Backoff(rng=_Top())
    assert [backoff.next_delay() for _ in CEILINGS] == pytest.approx(CEILINGS)


def test_floors_are_half_the_ceilings() -> None:
    backoff = Backoff(rng=_Bottom())
    assert [backoff.next_delay() for _ in CEILINGS] == pytest.approx([c / 2 for c in CEILINGS])


def test_delays_stay_in_the_upper_half_of_their_range() -> None:
    backoff = Backoff(rng=random.Random(7))  # noqa: S311 - a seeded jitter source for the test
    for _round in range(3):
        for ceiling in CEILINGS:
            delay = backoff.next_delay()
            assert ceiling / 2 <= delay <= ceiling
        backoff.reset()


def test_delays_grow_until_capped() -> None:
    # Drawn from [c/2, c] and then from [c, 2c], a delay is never below the
    # one before it while the ceiling still doubles (0.1 .. 6.4 here).
    for seed in range(50):
        backoff = Backoff(rng=random.Random(seed))  # noqa: S311 - a seeded jitter source for the test
        delays = [backoff.next_delay() for _ in range(7)]
        assert delays == sorted(delays)
        assert delays[-1] >= 3.2 > 0.1 >= delays[0]


def test_exact_values_with_a_seeded_random() -> None:
    expected_rng = random.Random(1234)  # noqa: S311 - a seeded jitter source for the test
    expected = [expected_rng.uniform(c / 2, c) for c in CEILINGS]
    backoff = Backoff(rng=random.Random(1234))  # noqa: S311 - a seeded jitter source for the test
    assert [backoff.next_delay() for _ in CEILINGS] == expected


def test_deterministic_with_the_same_seed() -> None:
    first = Backoff(initial=0.05, maximum=5.0, rng=random.Random(99))  # noqa: S311 - a seeded jitter source for the test
    second = Backoff(initial=0.05, maximum=5.0, rng=random.Random(99))  # noqa: S311 - a seeded jitter source for the test
    assert [first.next_delay() for _ in range(30)] == [second.next_delay() for _ in range(30)]


def test_different_seeds_give_different_delays() -> None:
    first = Backoff(rng=random.Random(1))  # noqa: S311 - a seeded jitter source for the test
    second = Backoff(rng=random.Random(2))  # noqa: S311 - a seeded jitter source for the test
    assert [first.next_delay() for _ in range(5)] != [second.next_delay() for _ in range(5)]


def test_capped_at_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=3.0, factor=3.0, rng=_Top())
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 3.0, 3.0, 3.0]


def test_reset_starts_again_from_initial() -> None:
    backoff = Backoff(rng=_Top())
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)
    assert backoff.next_delay() == pytest.approx(0.2)


def test_custom_initial_and_factor() -> None:
    backoff = Backoff(initial=0.05, maximum=5.0, factor=3.0, rng=_Top())
    assert [backoff.next_delay() for _ in range(6)] == pytest.approx(
        [0.05, 0.15, 0.45, 1.35, 4.05, 5.0]
    )


@pytest.mark.parametrize(("initial", "maximum"), [(0.1, 10.0), (0.05, 5.0)])
def test_a_long_outage_keeps_giving_capped_delays(initial: float, maximum: float) -> None:
    # A broker away overnight means thousands of failed attempts in a row;
    # the delay must stay at the maximum rather than overflow the float.
    backoff = Backoff(initial=initial, maximum=maximum, rng=random.Random(3))  # noqa: S311 - a seeded jitter source for the test
    for _ in range(5000):
        delay = backoff.next_delay()
        assert 0 < delay <= maximum
    assert maximum / 2 <= backoff.next_delay() <= maximum
