"""The terminal's one idea of now, in milliseconds since the epoch.

A Raspberry Pi has no real-time clock: it boots with the time it last saved
(or its image's), and is right only once NTP has synchronised it. Display
tickets and countdowns are the PSP's times, so until the system says its
clock is synchronised the terminal reads the PSP's: it learns how far the
PSP's clock is from its own from the ``Date`` header of the PSP's answers
(``terminal.psp_time``), and ``now`` adds that offset. Once the system
clock is synchronised, it is the clock, as everywhere else.

``Date`` counts whole seconds, and the answer takes its round trip: an
offset under ``NEGLIGIBLE_MS`` is within what a ``Date`` can tell, and is
not applied, so that a clock that is right but not known to be synchronised
(a container, a system without timesyncd) is not made less right.

The controller, the trust checks and the renderer all take ``now`` as an
argument; the daemon reads it here (the countdown's tick too). It is a
``scan2pay_common.clock.Clock`` built on another, the system's: a test hands
in a wall clock of its own (a ``MovableClock``) and moves it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

from scan2pay_common import clock as shared

from .timesync import system_clock_synced

log = logging.getLogger(__name__)

NEGLIGIBLE_MS = 2_000
# A Date header's second covers the thousand milliseconds after it.
HALF_SECOND_MS = 500
# An answer slower than this says little about when its Date was written.
SLOWEST_ANSWER_MS = 10_000
# No PSP answers from before this release: 2025-01-01T00:00:00Z.
EARLIEST_MS = 1_735_689_600_000


class Clock:
    """``wall``: the system's clock; ``sync_state``: whether the system says
    it is synchronised (None: it cannot say). Both blocking-free except
    ``sync_state``, which ``check_sync`` calls (off the event loop)."""

    def __init__(
        self,
        wall: shared.Clock = shared.SYSTEM_CLOCK,
        sync_state: Callable[[], bool | None] = system_clock_synced,
    ) -> None:
        self._wall = wall
        self._sync_state = sync_state
        self.synced: bool | None = None
        self.psp_offset_ms: int | None = None  # the PSP's clock minus the wall clock

    def now_ms(self) -> int:
        return self._wall.now_ms() + self.offset_ms

    def wall(self) -> int:
        return self._wall.now_ms()

    @property
    def offset_ms(self) -> int:
        """What ``now`` adds to the wall clock: the PSP's offset while the
        system clock is not known to be synchronised, and large enough to
        matter."""
        offset = self.psp_offset_ms
        if self.synced or offset is None or abs(offset) < NEGLIGIBLE_MS:
            return 0
        return offset

    def check_sync(self) -> bool | None:
        """Asks the system again whether its clock is synchronised. Blocks
        (it may run ``timedatectl``)."""
        synced = self._sync_state()
        if synced != self.synced:
            if synced:
                log.info("the system clock is synchronised: the terminal uses it")
            elif self.synced:
                log.warning("the system clock is no longer synchronised")
        self.synced = synced
        return synced

    def learn(self, date: str | None, sent: int, received: int) -> int | None:
        """Takes the ``Date`` of an answer asked for at wall time ``sent`` and
        received at ``received``; returns the offset learned, or None when
        the answer tells nothing (no date, an unreadable or impossible one,
        or too slow an answer). Stores one value: callable from a thread."""
        if date is None or received - sent > SLOWEST_ANSWER_MS or received < sent:
            return None
        try:
            stamp = parsedate_to_datetime(date)
            if stamp.tzinfo is None:  # "-0000": UTC, says RFC 5322
                stamp = stamp.replace(tzinfo=UTC)
            told = int(stamp.timestamp() * 1000)
        except (TypeError, ValueError, OverflowError):
            return None
        if told < EARLIEST_MS:
            return None
        offset = told + HALF_SECOND_MS - (sent + received) // 2
        before, self.psp_offset_ms = self.offset_ms, offset
        after = self.offset_ms
        if after and abs(after - before) >= NEGLIGIBLE_MS:
            log.warning(
                "the system clock is not known to be synchronised and is %.1f s %s the PSP's:"
                " using the PSP's time",
                abs(after) / 1000,
                "behind" if after > 0 else "ahead of",
            )
        elif before and not after and not self.synced:
            log.info("the system clock agrees with the PSP's again")
        return offset
