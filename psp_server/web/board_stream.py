"""``GET /merchant/stream``: the merchant's board as server-sent events.

The first message (``snapshot``) is the whole day: the newest checkouts
created since the browser's local midnight, the day's totals per currency
and the terminals. Then ``rows`` messages carry the checkouts that changed
with fresh totals, and ``terminals`` messages the terminals; ``signed_out``
ends the stream when its session no longer holds (checked every
``SESSION_CHECK_SECONDS``: a rotated or revoked key). A comment
every ``HEARTBEAT_SECONDS`` keeps proxies from closing an idle stream and
shows a gone client.

Where changes come from: a status change writes an event (its seq, per
merchant, is the cursor) and sets the app's wake-up (or, from another
process, the database backend's wake source does); a new checkout writes
no event, so the checkouts created in the last ``WINDOW_MS`` are read at
each wake-up, a poke from this process's ``POST /v1/checkouts`` and at
least once a ``POLL_SECONDS`` (another process's new checkouts make no
noise at all).
The window overlaps on purpose; what a stream sent is remembered, so an
unchanged row is not sent again, and the browser merges rows by id with a
rule under which a resend is harmless anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from psp_server.api.appkeys import BOARD_HUB, CLOCK, PRESENCE, RELAY_WAKE, STORAGE
from psp_server.core.errors import StorageError
from psp_server.core.records import Checkout
from psp_server.mqtt.presence import TerminalSeen
from psp_server.web import board_rows
from scan2pay_common.timefmt import to_rfc3339

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# An open stream asks this often whether its session still holds: a key
# rotated or revoked, or twelve hours gone, ends it ("signed_out").
SESSION_CHECK_SECONDS = 5.0
POLL_SECONDS = 1.0
WINDOW_MS = 10_000
# Wake-ups closer together than this are served as one: every payment of
# every merchant wakes every board, and a board needs no more than a few
# reads a second.
MIN_GAP_SECONDS = 0.2
SNAPSHOT_ROWS = 200
# How far back "today" may start: a day, and a day's worth of time zones
# and clock error. A browser whose clock runs ahead gets an hour.
SINCE_MAX_AGE_MS = 48 * 3600 * 1000
SINCE_MAX_AHEAD_MS = 3600 * 1000
RETRY_MS = 2000


class Terminals(Protocol):
    """What the board needs of ``presence.PresenceWatch``."""

    @property
    def connected(self) -> bool: ...

    def terminals(self) -> list[TerminalSeen]: ...

    async def changed(self) -> None: ...


class _NoBroker:
    """A PSP without a broker hears no terminal: their status is unknown."""

    connected = False

    def terminals(self) -> list[TerminalSeen]:
        return []

    async def changed(self) -> None:
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def _watch_terminals(app: web.Application, merchant_id: str) -> AsyncIterator[Terminals]:
    presence = app.get(PRESENCE)
    if presence is None:
        yield _NoBroker()
        return
    async with presence.watch(merchant_id) as watch:
        yield watch


def _terminals_json(watch: Terminals, *, broker: bool) -> dict[str, Any]:
    unknown = None if watch.connected else ("disconnected" if broker else "no_broker")
    return {
        "unknown": unknown,
        "terminals": [
            {
                "terminal_id": seen.terminal_id,
                "online": seen.online,
                "screen": seen.screen,
                "checkout_id": seen.checkout_id,
                "since": to_rfc3339(seen.since_ms),
            }
            for seen in watch.terminals()
        ],
    }


def parse_since(raw: str | None, now: int) -> int | None:
    """The start of the browser's day in ms, or None when it is not one."""
    if raw is None or not raw.isdigit() or len(raw) > 15:
        return None
    since = int(raw)
    if not now - SINCE_MAX_AGE_MS <= since <= now + SINCE_MAX_AHEAD_MS:
        return None
    return since


def _message(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Gone(Exception):
    """The client went away, or the server is shutting down."""


class BoardStream:
    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        merchant_id: str,
        since: int,
        session_holds: Callable[[], Awaitable[bool]],
    ) -> None:
        self.request = request
        self.response = response
        self.merchant_id = merchant_id
        self.since = since
        self.session_holds = session_holds
        self.last_check = 0.0
        self.storage = request.app[STORAGE]
        self.clock = request.app[CLOCK]
        self.hub = request.app[BOARD_HUB]
        self.poke = asyncio.Event()
        self.cursor = 0
        # id -> (state sent, created_at) for the checkouts the window can
        # still return, so that an unchanged one is not sent each poll.
        self.sent: dict[str, tuple[tuple[str, int], int]] = {}
        self.last_write = 0.0

    async def run(self) -> None:
        app = self.request.app
        wake = app[RELAY_WAKE]
        wake.add_listener(self.poke)
        try:
            with self.hub.open(self.merchant_id, self.poke):
                async with _watch_terminals(app, self.merchant_id) as terminals:
                    await self._serve(terminals, broker=app.get(PRESENCE) is not None)
        except _Gone:
            pass
        except StorageError as exc:
            # The browser reconnects (``retry``) and starts over from a snapshot.
            log.warning("a merchant board's stream ended: %s", exc)
        finally:
            wake.remove_listener(self.poke)

    async def _serve(self, terminals: Terminals, *, broker: bool) -> None:
        await self._write(b"retry: %d\n\n" % RETRY_MS)
        now = self.clock.now_ms()
        day = await self.storage.merchant_day(
            self.merchant_id, self.since, now=now, limit=SNAPSHOT_ROWS
        )
        self.cursor = day.event_seq
        self._remember(day.checkouts, now)
        await self._send(
            "snapshot",
            {
                "since": self.since,
                "rows": [board_rows.row(c, now) for c in day.checkouts],
                "limit": SNAPSHOT_ROWS,
                "totals": board_rows.totals(day.totals),
                "terminals": _terminals_json(terminals, broker=broker),
            },
        )
        terminals_changed = asyncio.Event()

        async def follow_terminals() -> None:
            while True:
                await terminals.changed()
                terminals_changed.set()
                self.poke.set()

        follower = asyncio.create_task(follow_terminals(), name="board-terminals")
        self.last_check = asyncio.get_running_loop().time()
        try:
            while True:
                poked = await self._wait()
                if self.hub.closing or self._client_gone():
                    return
                if not await self._session_still_holds():
                    await self._send("signed_out", {})
                    return
                await self._send_changes()
                if terminals_changed.is_set():
                    terminals_changed.clear()
                    await self._send("terminals", _terminals_json(terminals, broker=broker))
                loop_time = asyncio.get_running_loop().time()
                if loop_time - self.last_write >= HEARTBEAT_SECONDS:
                    await self._write(b": heartbeat\n\n")
                if poked:
                    await asyncio.sleep(MIN_GAP_SECONDS)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    async def _session_still_holds(self) -> bool:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self.last_check < SESSION_CHECK_SECONDS:
            return True
        self.last_check = loop_time
        return await self.session_holds()

    async def _wait(self) -> bool:
        """Until a poke or the poll's time; whether it was a poke."""
        poked = True
        try:
            async with asyncio.timeout(POLL_SECONDS):
                await self.poke.wait()
        except TimeoutError:
            poked = False
        self.poke.clear()
        return poked

    async def _send_changes(self) -> None:
        now = self.clock.now_ms()
        rows: dict[str, dict[str, Any]] = {}
        more = True
        while more:
            changes = await self.storage.board_changes(
                self.merchant_id,
                after_seq=self.cursor,
                created_since=max(self.since, now - WINDOW_MS),
            )
            self.cursor = changes.event_seq
            more = changes.more
            # The events' checkouts first: they changed for sure. An event of
            # an older day's checkout (a refund) is not today's business.
            for checkout in changes.changed:
                if checkout.created_at >= self.since:
                    rows[checkout.id] = board_rows.row(checkout, now)
            for checkout in changes.created:
                seen = self.sent.get(checkout.id)
                if seen is None or seen[0] != board_rows.state(checkout, now):
                    rows[checkout.id] = board_rows.row(checkout, now)
            self._remember(changes.changed + changes.created, now)
        self._forget_before(now - 2 * WINDOW_MS)
        if rows:
            totals = await self.storage.day_totals(self.merchant_id, self.since, now=now)
            await self._send(
                "rows", {"rows": list(rows.values()), "totals": board_rows.totals(totals)}
            )

    def _remember(self, checkouts: list[Checkout], now: int) -> None:
        horizon = now - 2 * WINDOW_MS
        for checkout in checkouts:
            if checkout.created_at >= horizon:
                self.sent[checkout.id] = (board_rows.state(checkout, now), checkout.created_at)

    def _forget_before(self, horizon: int) -> None:
        gone = [key for key, (_, created) in self.sent.items() if created < horizon]
        for key in gone:
            del self.sent[key]

    def _client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _send(self, event: str, data: Any) -> None:
        await self._write(_message(event, data))

    async def _write(self, data: bytes) -> None:
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError) as exc:
            raise _Gone() from exc
        self.last_write = asyncio.get_running_loop().time()
