"""The shared clock: the system's, and a movable one that tests step on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scan2pay_common.clock import MONOTONIC_CLOCK, SYSTEM_CLOCK, Deadline, MovableClock
from scan2pay_common.timefmt import now_ms
from tests.support.file_clock import FileClock


class Stopped:
    def __init__(self, at: int) -> None:
        self.at = at

    def now_ms(self) -> int:
        return self.at


def test_the_system_clock_is_the_systems() -> None:
    before = now_ms()
    assert before <= SYSTEM_CLOCK.now_ms() <= now_ms()


def test_the_monotonic_clock_is_the_systems_monotonic_one_not_the_wall_clock() -> None:
    before = time.monotonic_ns() // 1_000_000
    assert before <= MONOTONIC_CLOCK.now_ms() <= time.monotonic_ns() // 1_000_000
    assert abs(MONOTONIC_CLOCK.now_ms() - SYSTEM_CLOCK.now_ms()) > 1_000  # not since 1970


def test_a_movable_clock_runs_with_its_base_and_moves_forward() -> None:
    base = Stopped(1_000)
    clock = MovableClock(base, offset_ms=-300)  # set wrong from the start
    assert clock.now_ms() == 700
    base.at += 50
    assert clock.now_ms() == 750
    clock.advance(250)
    assert clock.now_ms() == 1_000
    clock.advance_to(5_000)
    assert clock.now_ms() == 5_000
    clock.advance_to(4_000)  # already past: stays
    assert clock.now_ms() == 5_000
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(-1)
    assert clock.now_ms() == 5_000


def test_a_file_clock_is_moved_for_every_process_that_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    mover, server = FileClock(path), FileClock(path)
    assert abs(server.now_ms() - now_ms()) < 1_000  # no file yet: the system's
    target = now_ms() + 3_600_000
    mover.advance_to(target)
    assert target <= server.now_ms() < target + 1_000
    mover.advance_to(target - 60_000)  # never back
    assert server.now_ms() >= target


def test_a_deadline_passes_when_its_clock_is_moved_past_it() -> None:
    clock = MovableClock()
    deadline = Deadline.after(60_000, clock)
    assert not deadline.passed(clock)
    clock.advance(59_000)
    assert not deadline.passed(clock)
    clock.advance(1_000)
    assert deadline.passed(clock)


def test_a_clock_set_back_does_not_make_a_deadline_last_longer() -> None:
    """The monotonic clock still ends it: the wall clock, stepped back an
    hour, has the whole hour again to go."""
    wall = Stopped(10_000_000)
    deadline = Deadline.after(1_000, wall)
    wall.at -= 3_600_000
    assert not deadline.passed(wall)  # neither clock there yet
    monotonic_past = Deadline(at_ms=deadline.at_ms, monotonic_ns=time.monotonic_ns())
    assert monotonic_past.passed(wall)


def test_a_deadline_lasts_no_negative_time() -> None:
    with pytest.raises(ValueError, match="0 ms or more"):
        Deadline.after(-1, SYSTEM_CLOCK)
