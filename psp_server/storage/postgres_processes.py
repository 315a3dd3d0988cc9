"""What several PSP processes on one PostgreSQL database share, each on a
connection of its own: the merchants' partitions, leased as session
advisory locks, and the wake-up when another process commits events, by
LISTEN.

A process that dies loses its connection and its locks with it. Each
process counts the processes alive by their lock connections
(``APPLICATION_NAME``) and aims at its fair share of the partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time

import psycopg

from psp_server.storage.partitions import PARTITIONS, REFRESH_SECONDS, fair_share
from scan2pay_common.backoff import Backoff

log = logging.getLogger(__name__)

# The first key of every partition's advisory lock: "s2p" "part".
LOCK_SPACE = 0x73327000
APPLICATION_NAME = "scan2pay-partitions"
# Every transaction that writes events notifies this channel at its commit
# (a trigger, migration 0005): a relay holding the merchant's partition in
# another process wakes at once instead of at its next poll.
EVENTS_CHANNEL = "scan2pay_events"


class LeasedPartitions:
    """A share of the partitions, held as session advisory locks."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[tuple[int, ...]] | None = None
        self._held: list[int] = []
        self._checked_at = -math.inf
        self._lost = False

    async def held(self) -> list[int] | None:
        now = time.monotonic()
        if now - self._checked_at >= REFRESH_SECONDS:
            self._checked_at = now
            try:
                await self._rebalance()
            except psycopg.Error as exc:
                # Without the connection the locks are gone too: serve
                # nothing until they are taken again, as another process may
                # have taken them meanwhile.
                if not self._lost:  # once per outage, not once a second
                    log.warning("partition locks lost (%s); retrying", first_line(exc))
                self._lost = True
                await self._drop_connection()
            else:
                if self._lost:
                    log.warning("partition locks taken again: %d held", len(self._held))
                self._lost = False
        return list(self._held)

    async def close(self) -> None:
        await self._drop_connection()

    async def _rebalance(self) -> None:
        conn = await self._connection()
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",
                (APPLICATION_NAME,),
            )
        ).fetchone()
        share = fair_share(row[0] if row else 1)
        while len(self._held) > share:
            partition = self._held.pop()
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, partition))
        free = [p for p in range(PARTITIONS) if p not in self._held]
        random.shuffle(free)  # processes starting together try different ones first
        for partition in free:
            if len(self._held) >= share:
                break
            taken = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, partition))
            ).fetchone()
            if taken and taken[0]:
                self._held.append(partition)
        self._held.sort()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[int, ...]]:
        if self._conn is None or self._conn.closed:
            self._held = []
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=5
            )
        return self._conn

    async def _drop_connection(self) -> None:
        self._held = []
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()


async def wake_on_new_events(dsn: str, wake: asyncio.Event) -> None:
    """LISTENs on its own connection and sets ``wake`` at each notification,
    for the life of the task; reconnects after a failure."""
    backoff = Backoff(initial=0.1, maximum=5.0)
    lost = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                backoff.reset()
                if lost:
                    log.warning("event notifications are back")
                lost = False
                wake.set()  # whatever was written while no one listened
                async for _ in conn.notifies():
                    wake.set()
        except psycopg.Error as exc:
            delay = backoff.next_delay()
            if not lost:  # once per outage; the relay's poll covers the gap
                log.warning("event notifications lost (%s); listening again", first_line(exc))
            lost = True
            await asyncio.sleep(delay)


def first_line(exc: BaseException) -> str:
    """libpq's messages go on with a hint line; the log keeps one line."""
    return str(exc).strip().split("\n", 1)[0]
