"""Which merchants' background work this process does: publishing their
events (the outbox relay) and delivering their webhooks.

A process alone on its database does it for every merchant. Processes that
share one database split the merchants into ``PARTITIONS`` by a hash of
their id (the dialect's ``in_partitions``), and each partition is leased to
one process at a time by the database's backend (``Backend.partitions``).
Holding a merchant's partition is what lets one relay publish that
merchant's events in ``seq`` order while other relays publish other
merchants' events at the same time. A process that dies loses its leases
with it; the others take its partitions over at their next look
(``REFRESH_SECONDS``).

Each process aims at an equal share (``fair_share``) of the processes
alive, so that a new worker is given partitions and a dead one's are spread
over the rest.
"""

from __future__ import annotations

import math
from typing import Protocol

PARTITIONS = 16
REFRESH_SECONDS = 1.0


class Partitions(Protocol):
    async def held(self) -> list[int] | None:
        """The partitions this process serves now; None: every merchant."""

    async def close(self) -> None: ...


class AllPartitions:
    """One process serves every merchant."""

    async def held(self) -> list[int] | None:
        return None

    async def close(self) -> None:
        return None


def fair_share(alive: int) -> int:
    """How many partitions each of ``alive`` processes holds, at most."""
    return math.ceil(PARTITIONS / max(1, alive))
