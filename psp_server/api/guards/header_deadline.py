"""A deadline for each request's headers, against slow clients (slowloris).

aiohttp has no header-read timeout, so a client can hold a connection open
for an hour by sending a header byte now and then. Here every connection
gets a deadline from the moment it opens, or from its last answer, until
the next request's headers are complete; missing it closes the connection.
The middleware clears the deadline when a request reaches the app (its
headers are complete then) and sets it again when the answer is out, so an
idle keep-alive connection is closed after the same time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)


class HeaderDeadlines:
    """Each guarded connection's deadline, as a time; one timer sweeps them
    all a few times per period. (A timer per connection, set and cancelled
    around every request, cost more than the rest of this module's work.)
    A connection is cut off between ``seconds`` and 1.25 x ``seconds`` after
    its deadline was set."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadlines: dict[asyncio.BaseTransport, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = 0  # connections cut off, for the tests and the logs

    def arm(self, transport: asyncio.BaseTransport) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        self._deadlines[transport] = loop.time() + self.seconds
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.seconds / 4, self._sweep)

    def disarm(self, transport: asyncio.BaseTransport) -> None:
        self._deadlines.pop(transport, None)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [t for t, deadline in self._deadlines.items() if deadline <= now]
        for transport in late:
            del self._deadlines[transport]
            if not transport.is_closing():
                self.closed += 1
                log.info("closed a connection whose request headers took over %.1fs", self.seconds)
                transport.close()
        self._sweeper = loop.call_later(self.seconds / 4, self._sweep) if self._deadlines else None

    def protocol_factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], Any]:
        """Wraps aiohttp's protocol factory: each new connection is armed."""
        return lambda: _Guarded(make(), self)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the deadline set when the
    connection opens and cleared when it ends. (aiohttp's handler has
    __slots__, so it is wrapped rather than patched.)"""

    def __init__(self, inner: asyncio.Protocol, deadlines: HeaderDeadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)
        self._deadlines.arm(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._deadlines.disarm(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def clear_header_deadline(deadlines: HeaderDeadlines) -> Middleware:
    """The middleware that lifts the deadline while a request is served;
    bound to the app's deadlines, so that no request looks them up."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        if transport is None:
            return await handler(request)
        deadlines.disarm(transport)  # the headers are here
        try:
            return await handler(request)
        finally:
            # Until the next request's headers: a fresh deadline. (The body of
            # this one has its own timeout, abuse.slow_bodies.)
            if not transport.is_closing():
                deadlines.arm(transport)

    return middleware


class GuardedSockSite(web.SockSite):
    """aiohttp's SockSite, with each connection under a header deadline."""

    def __init__(self, runner: web.AppRunner, sock: Any, deadlines: HeaderDeadlines) -> None:
        super().__init__(runner, sock)
        self._deadlines = deadlines

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        if server is None:  # as web.BaseSite.start itself would say
            raise RuntimeError("Call runner.setup() before making a site")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._deadlines.protocol_factory(server), sock=self._sock
        )
