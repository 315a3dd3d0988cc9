"""Secrets found in the database, believed for a while without asking again.

Every merchant request asks for its API key first, and every payment for its
wallet's token; a found secret is kept, by its digest, for ``ms``. A change
made through this process clears the cache at once; one made through another
process (the CLI) holds within ``ms``, whatever the wall clock does meanwhile
(``Deadline``). Unknown secrets are always looked up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from scan2pay_common.clock import Clock, Deadline

V = TypeVar("V")

# Secrets held at the most; past it the cache starts again.
HELD_AT_MOST = 10_000


class Believed(Generic[V]):
    def __init__(self, ms: int, clock: Clock) -> None:
        self._ms = ms
        self._clock = clock
        self._held: dict[str, tuple[Deadline, V]] = {}

    async def find(self, digest: str, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """What ``digest`` names: from memory while believed, else ``read``."""
        held = self._held.get(digest)
        if held is not None and not held[0].passed(self._clock):
            return held[1]
        # Counted from before the read: what it finds may be that old.
        until = Deadline.after(self._ms, self._clock)
        found = await read()
        if found is not None:
            if len(self._held) >= HELD_AT_MOST:
                self._held.clear()
            self._held[digest] = (until, found)
        return found

    def forget(self) -> None:
        self._held.clear()
