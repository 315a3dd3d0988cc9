"""Where the rate limits' buckets live: one table of fixed size, made before
``serve --workers N`` forks its workers and shared by all of them, so that
a limit of N a minute allows N a minute whatever the number of workers
(docs/scaling.md). With one process it is the same table in its own memory.

The table is ``GROUPS`` groups of ``WAYS`` slots; a slot holds a key's
fingerprint and its bucket's ``full_at`` (rate_limiter.py), 16 bytes. A key
(the limit's name and the client's address or token key) is hashed with a
secret of the table into its group and its 64-bit fingerprint. A key not
in its group takes the slot whose bucket is full soonest: a slot whose
bucket is full already holds nothing worth keeping, so buckets need no
clearing.

What the table can get wrong (docs/scaling.md works out the odds):

* Two keys share a bucket only when they fall in the same group with the
  same 64-bit fingerprint: with a million clients active at once, about
  one chance in 10^12 that any two do.
* A group whose ``WAYS`` slots all hold buckets that are not yet full gives
  one of them up to a new key: that client starts again with a full bucket,
  as the old in-process table forgot its least recently used buckets. So an
  error only ever lets a client through, never refuses one for another.
  A bucket is active (not full) only while its client is near its limit:
  one request keeps it so for one interval (0.2 s at 300 a minute). With
  100,000 buckets active at once, 2 keys in 100,000 find no slot of their
  own; with 10,000, one in 10^12.

Shared between processes, the table is a memfd (a file with no name, in
memory): the workers inherit its mapping and descriptor across ``fork``,
nothing of it is on any file system, and the kernel frees it when the last
process holding it ends, however it ends. A group is updated under a POSIX
record lock on its bytes (``fcntl.lockf``): per process, not inherited by a
fork, and dropped by the kernel when the process dies, so a worker killed
in the middle of an update blocks nobody. What it may leave is one slot
half written, which ``spend`` reads as at most one full or empty bucket.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from psp_server.core.errors import PSPError
from scan2pay_common.clock import MONOTONIC_CLOCK, Clock

if TYPE_CHECKING:
    from psp_server.api.guards.rate_limiter import Shape

WAYS: Final = 8
GROUPS: Final = 65_536  # x 8 slots x 16 bytes: 8 MiB, touched as used
_SLOT: Final = struct.Struct("<Qq")  # fingerprint, full_at (ns)
_GROUP: Final = struct.Struct("<" + "Qq" * WAYS)
_DIGEST: Final = struct.Struct("<QQ")  # the group, the fingerprint
MEMFD_NAME: Final = "scan2pay-rate-limits"

# (full_at, now, shape) -> (new full_at, wait in ns); rate_limiter.spend
Spend = Callable[[int, int, "Shape"], tuple[int, int]]


class BucketTable:
    """Build it with ``in_process()`` or ``shared()``. ``update`` is called
    from the event loop's thread only (each worker has one)."""

    def __init__(self, memory: mmap.mmap, lock_fd: int | None, groups: int, clock: Clock) -> None:
        self._memory = memory
        self._lock_fd = lock_fd
        self.groups = groups
        self._clock = clock
        # Made once, before any fork: every worker hashes a key alike, and
        # neither an address nor a token is kept as itself.
        self.secret = secrets.token_bytes(32)
        # Copied for each key: cheaper than keying a new hash each time.
        self._keyed = hashlib.blake2b(key=self.secret, digest_size=_DIGEST.size)
        self.evicted = 0  # buckets given up before they were full, in this process

    @classmethod
    def in_process(cls, *, groups: int = GROUPS, clock: Clock = MONOTONIC_CLOCK) -> BucketTable:
        """In this process's memory, with no locks: its one event loop is the
        only one to update it."""
        return cls(mmap.mmap(-1, groups * _GROUP.size), None, groups, clock)

    @classmethod
    def shared(cls, *, groups: int = GROUPS, clock: Clock = MONOTONIC_CLOCK) -> BucketTable:
        """In memory that the processes forked from this one share."""
        try:
            fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC)
        except OSError as exc:
            raise PSPError(f"cannot make the rate limits' shared table: {exc.strerror}") from exc
        try:
            os.ftruncate(fd, groups * _GROUP.size)
            memory = mmap.mmap(fd, groups * _GROUP.size, mmap.MAP_SHARED)
        except OSError as exc:
            os.close(fd)
            raise PSPError(f"cannot make the rate limits' shared table: {exc.strerror}") from exc
        return cls(memory, fd, groups, clock)

    def close(self) -> None:
        self._memory.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def update(self, key: bytes, shape: Shape, spend: Spend) -> int:
        """Runs ``spend`` on ``key``'s bucket, stores what it returns, and
        returns its wait (ns)."""
        hashed = self._keyed.copy()
        hashed.update(key)
        group, fingerprint = _DIGEST.unpack(hashed.digest())
        fingerprint |= 1  # 0 marks a slot never used
        offset = group % self.groups * _GROUP.size
        now = self._clock.now_ms() * 1_000_000
        lock_fd = self._lock_fd
        if lock_fd is not None:
            fcntl.lockf(lock_fd, fcntl.LOCK_EX, _GROUP.size, offset)
        try:
            slots = _GROUP.unpack_from(self._memory, offset)
            fingerprints = slots[0::2]
            if fingerprint in fingerprints:
                way = fingerprints.index(fingerprint)
                full_at = slots[2 * way + 1]
            else:
                full_ats = slots[1::2]
                full_at = min(full_ats)
                way = full_ats.index(full_at)
                if full_at > now:
                    self.evicted += 1
                full_at = 0  # a new bucket, full
            new_full_at, wait = spend(full_at, now, shape)
            if not wait:
                _SLOT.pack_into(self._memory, offset + way * _SLOT.size, fingerprint, new_full_at)
        finally:
            if lock_fd is not None:
                fcntl.lockf(lock_fd, fcntl.LOCK_UN, _GROUP.size, offset)
        return wait
