"""The server's log: one line per record on stderr, with records written a
loop iteration at a time.

At thousands of requests a second the access log was a tenth of the
request thread's time: a ``write`` system call per line (stderr is line
buffered), and a ``strftime`` per record for its time stamp. Here lines
are gathered and written once per event-loop iteration, and the stamp is
formatted once per second. A record at WARNING or above is written at
once, with everything gathered before it, so that nothing that explains a
crash waits in memory; what an abrupt kill can take is at most the last
iteration's access lines.

Each record is one line, escaped by scan2pay_common.logformat's formatter,
which the stamp cache below extends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import TextIO

from psp_server.api import client_errors
from scan2pay_common.logformat import FORMAT, JsonLineFormatter, OneLineFormatter, forgiving
from scan2pay_common.logredact import RedactSecrets

__all__ = ["FORMAT", "BatchingStreamHandler", "configure", "name_worker"]


class _CachedTimeFormatter(OneLineFormatter):
    """``logging.Formatter``'s default stamp ("2026-11-24 10:01:44,123"),
    with the seconds part formatted once per second."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
        return f"{self._stamp},{int(record.msecs):03d}"


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """Gathers formatted lines and writes them once per loop iteration (at
    once when no loop runs, or for WARNING and above)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(forgiving(stream or sys.stderr))
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.write_out()
                return
            if not self._scheduled:
                try:
                    asyncio.get_running_loop().call_soon(self.write_out)
                except RuntimeError:  # no loop in this thread: now
                    self.write_out()
                    return
                self._scheduled = True
        except Exception:  # noqa: BLE001 - a handler never raises: handleError reports it, as logging's own do
            self.handleError(record)

    def write_out(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.acquire()  # the handler's lock, as logging.StreamHandler.emit takes it
        try:
            self.stream.write("".join(lines))
            self.flush()
        finally:
            self.release()

    def close(self) -> None:
        self.write_out()
        super().close()


def configure(level: str, log_format: str = "text") -> None:
    """``log_format``: "text", a line per record, or "json", an object per
    line (docs/operations.md)."""
    handler = BatchingStreamHandler()
    handler.setFormatter(
        JsonLineFormatter() if log_format == "json" else _CachedTimeFormatter(FORMAT)
    )
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=level, handlers=[handler])
    client_errors.install()
    # The format above uses none of a record's caller, thread or process
    # fields; gathering them was a tenth of the cost of a record (the
    # logging HOWTO's "Optimization" section names these switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def name_worker(number: int) -> None:
    """In a worker of ``serve --workers N``, where the workers share stderr:
    each line says which one wrote it. The number stays with a worker's
    replacement; the pid tells a replacement from the worker it replaced."""
    tag = f"worker={number} pid={os.getpid()} "
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonLineFormatter):
            handler.setFormatter(JsonLineFormatter({"worker": number, "pid": os.getpid()}))
        else:
            handler.setFormatter(_CachedTimeFormatter(FORMAT.replace("%(name)s", tag + "%(name)s")))
