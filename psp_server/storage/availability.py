"""Whether this process can reach its database, said once per change.

An outage makes every request and every background loop fail at once; a
line for each would bury the one line that matters (and used to cost a
core in tracebacks). The backends report each failure to reach the
database and each success after one; only the changes are logged.

Every failed transaction is counted too (``failed``), the database away or
refusing the work: ``on_failure`` is the app's ``scan2pay_db_errors_total``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Availability:
    __slots__ = ("_clock", "down_since", "on_failure", "reason")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.down_since: float | None = None
        self.reason = ""
        self.on_failure: Callable[[], None] = _nothing

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self) -> None:
        """A transaction failed, for whatever reason."""
        self.on_failure()

    def lost(self, reason: str) -> None:
        self.failed()
        if self.down_since is not None:
            return
        self.down_since = self._clock()
        self.reason = reason
        log.error(
            "the database is unavailable (%s); requests are answered 503 and background "
            "work backs off until it is back",
            reason,
        )

    def back(self) -> None:
        if self.down_since is None:
            return
        # WARNING, so that it is written at once like the line it ends.
        log.warning("the database is back after %.1f s", self._clock() - self.down_since)
        self.down_since = None
        self.reason = ""


def _nothing() -> None:
    pass
