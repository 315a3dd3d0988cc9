"""The rate limits' buckets in one table of fixed size
(psp_server/api/guards/bucket_table.py): which bucket a full group gives
up, and the table shared by processes forked from its maker, as the
workers of ``serve --workers N`` are, including one killed in the middle
of an update."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from psp_server.api.guards.bucket_table import WAYS, BucketTable
from psp_server.api.guards.rate_limiter import NS, RateLimiter, Shape, spend
from psp_server.runtime.config import Rate
from tests.support.stopped_clock import stopped_clock

PER_MINUTE = Rate(1, 60.0)


@pytest.fixture
def shared() -> Iterator[BucketTable]:
    table = BucketTable.shared(groups=64, clock=stopped_clock())
    yield table
    table.close()


# One group: which bucket goes.


def test_a_full_group_gives_up_the_bucket_that_is_full_soonest() -> None:
    clock = stopped_clock()
    table = BucketTable.in_process(groups=1, clock=clock)
    limiter = RateLimiter("qr/ip", PER_MINUTE, table)
    for n in range(WAYS):  # each bucket emptied a second after the one before
        assert limiter.take(f"k{n}") == 0.0
        clock.advance(1_000)
    assert table.evicted == 0
    assert limiter.take("k0") == 60.0 - WAYS  # still there, still empty
    assert limiter.take("new") == 0.0  # the group is full: k0 goes, full soonest
    assert table.evicted == 1
    assert limiter.take("k1") == 60.0 - WAYS + 1  # the others keep their buckets
    assert limiter.take("k0") == 0.0  # forgotten: it starts again full...
    assert table.evicted == 2  # ...in k1's slot, full soonest now
    assert limiter.take("new") == 60.0  # emptied last, kept


def test_a_full_bucket_leaves_its_slot_free_without_counting_as_given_up() -> None:
    clock = stopped_clock()
    table = BucketTable.in_process(groups=1, clock=clock)
    limiter = RateLimiter("qr/ip", PER_MINUTE, table)
    for n in range(WAYS):
        limiter.take(f"k{n}")
    clock.advance(60_000)  # every bucket is full again
    assert [limiter.take(f"other{n}") for n in range(WAYS)] == [0.0] * WAYS
    assert table.evicted == 0


def test_many_keys_keep_their_own_buckets_in_a_large_enough_table() -> None:
    table = BucketTable.in_process(groups=4096, clock=stopped_clock())
    limiter = RateLimiter("pay/token", PER_MINUTE, table)
    keys = [f"tok:{n:032x}" for n in range(2000)]
    assert {limiter.take(key) for key in keys} == {0.0}
    assert {limiter.take(key) for key in keys} == {60.0}  # every one remembered
    assert table.evicted == 0


# Shared between processes.


def _in_child(body: Callable[[], int]) -> int:
    """Forks; the child runs ``body`` and exits with what it returns."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = body()
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int, timeout: float = 10.0) -> int:
    """The child's exit code; it is killed, and the test fails, if it takes
    longer than ``timeout`` (a lock never released would hang it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} still ran after {timeout} s")


def test_processes_forked_from_the_maker_share_every_bucket(shared: BucketTable) -> None:
    """Three processes take 50 times each from a bucket of 20: 20 in all go."""
    rate = Rate(20, 60.0)

    def hammer() -> int:
        limiter = RateLimiter("qr/ip", rate, shared)
        return sum(1 for _ in range(50) if limiter.take("ip:192.0.2.7") == 0.0)

    read, write = os.pipe()

    def reporting() -> int:
        os.write(write, bytes([hammer()]))
        return 0

    children = [_in_child(reporting) for _ in range(3)]
    assert [_exit_code(pid) for pid in children] == [0, 0, 0]
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        taken = list(pipe.read())
    assert sum(taken) == 20, taken
    # The maker sees the same, empty bucket.
    assert RateLimiter("qr/ip", rate, shared).take("ip:192.0.2.7") == 3.0


def test_a_process_killed_in_the_middle_of_an_update_blocks_no_one(shared: BucketTable) -> None:
    shape = Shape.of(PER_MINUTE)

    def die_holding_the_lock(full_at: int, now: int, shape: Shape) -> tuple[int, int]:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("not reached")

    def killed() -> int:
        shared.update(b"qr/ip\0ip:198.51.100.1", shape, die_holding_the_lock)
        return 0

    assert _exit_code(_in_child(killed)) == -signal.SIGKILL

    def after() -> int:
        limiter = RateLimiter("qr/ip", PER_MINUTE, shared)
        waits = [limiter.take("ip:198.51.100.1") for _ in range(2)]
        return 0 if waits == [0.0, 60.0] else 1

    assert _exit_code(_in_child(after)) == 0


def test_a_shared_table_is_memory_with_no_name_freed_with_its_last_process() -> None:
    table = BucketTable.shared(groups=16, clock=stopped_clock())
    mapped = _memfd_mappings(os.getpid())
    assert mapped
    assert all("(deleted)" in line for line in mapped)  # no file system holds it
    table.close()
    assert not _memfd_mappings(os.getpid())


def _memfd_mappings(pid: int) -> list[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return [line for line in maps if "/memfd:scan2pay-rate-limits" in line]


def test_spend_is_what_the_table_runs() -> None:
    """The table stores what ``spend`` returns: a bucket empties after its
    burst and says the wait in nanoseconds."""
    table = BucketTable.in_process(groups=2, clock=stopped_clock())
    shape = Shape(5 * NS, 2)
    waits = [table.update(b"pair/ip\0ip:203.0.113.9", shape, spend) for _ in range(3)]
    assert waits == [0, 0, 5 * NS]
