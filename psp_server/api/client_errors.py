"""What a client's broken request may write to the log: one line, and only
so many a minute.

aiohttp logs a request its parser refused ("Error handling request") with
a traceback of some twenty lines, and a client that hangs up halfway
through its body made our handlers log another. Anyone who can reach the
port can send those as fast as the network goes, so they would fill the
disk and bury the lines that matter. A client's error becomes one line
without a traceback; past ``BURST`` lines a minute the rest are counted,
and the next line says how many were left out. Errors that are not a
client's (our own bugs) keep their tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

# Where our own handlers report a client that went away mid-request.
clients_log = logging.getLogger("psp_server.clients")

BURST = 10
PER_SECONDS = 60.0
CLIENT_ERRORS = (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError, TimeoutError)


class ClientErrorLines(logging.Filter):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._tokens = float(BURST)
        self._at = clock()
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.exc_info and not isinstance(error, CLIENT_ERRORS):
            return True  # not the client's doing: the traceback is ours to read
        if error is not None:
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args, record.exc_info, record.exc_text = None, None, None
        now = self._clock()
        self._tokens = min(BURST, self._tokens + (now - self._at) * BURST / PER_SECONDS)
        self._at = now
        if self._tokens < 1:
            self._left_out += 1
            return False
        self._tokens -= 1
        if self._left_out:
            record.msg = f"{record.getMessage()} ({self._left_out} more like it left out)"
            record.args, self._left_out = None, 0
        return True


def install() -> None:
    """Puts the filter on the loggers that clients can make write."""
    for name in ("aiohttp.server", clients_log.name):
        logging.getLogger(name).addFilter(ClientErrorLines())
