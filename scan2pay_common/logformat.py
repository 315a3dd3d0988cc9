"""The log's format, shared by the PSP, the terminal, the cashier bridge and
the demo: one line per record, whatever a call site passes in.

Call sites escape what came from outside (``logtext.loggable``); this is
the guard for one that forgot, or for a library's message: a record's
message is escaped the same way, so that no control character, newline,
ANSI escape or surrogate reaches the stream raw. A traceback stays readable on
lines of its own, each escaped and indented, so that a forged line inside
an exception's message cannot pass for a record of its own (records start
at the line's first column). Nor may the stream raise on a character its
encoding lacks: it writes an escape instead.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import time
from typing import Any, TextIO

import orjson

from .logredact import FIELDS_ATTR, RedactSecrets
from .logtext import loggable

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Far more than any message of ours; there so that a megabyte that a call
# site let through, or a library's message that quotes a whole request,
# costs the log a line of bounded size.
LINE_LIMIT = 4096
CONTINUATION = "  | "  # before each line of a traceback


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # logging.Formatter.format, with the message escaped: the other
        # fields (time, level, logger) are the program's own.
        message = record.getMessage()
        if not message.isprintable() or len(message) > LINE_LIMIT:  # inlined: hot
            message = loggable(message, LINE_LIMIT)
        record.message = message
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)  # cached as usual
        if record.exc_text:
            line += continued(record.exc_text)
        if record.stack_info:
            line += continued(self.formatStack(record.stack_info))
        return line


# The id of the request being served, in the task that serves it (set by
# the PSP's psp_server/api/guards/request_context.py); None elsewhere.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "scan2pay_request_id", default=None
)
# What a record's ``extra`` may carry for the JSON format: a dict of fields
# the program made (FIELDS_ATTR: the access log's method, route, status...),
# written out as they are, beside the standard ones, and a short message of
# the program's own to show instead of the text format's (which, for the
# access log, is those same fields).
SUMMARY_ATTR = "summary"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (RFC 3339, UTC,
    milliseconds), ``level``, ``logger``, ``message``, ``request_id`` when
    a request is being served, the record's own fields (``FIELDS_ATTR``),
    the fields given at construction (a worker's number and pid), and
    ``exc``/``stack`` with a traceback. A record with fields may carry a
    summary (``SUMMARY_ATTR``), shown as its message. The message is escaped and bounded
    as ``OneLineFormatter`` does, and JSON escapes the rest; so one record
    is one line, whatever it holds."""

    def __init__(self, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._fields = fields or {}
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        message = getattr(record, SUMMARY_ATTR, None) or record.getMessage()
        if not message.isprintable() or len(message) > LINE_LIMIT:  # inlined: hot
            message = loggable(message, LINE_LIMIT)
        line: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            line.update(fields)
        if self._fields:
            line.update(self._fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = _lines(record.exc_text)
        if record.stack_info:
            line["stack"] = _lines(self.formatStack(record.stack_info))
        # OPT_NON_STR_KEYS is not needed: every key is ours. A value JSON
        # cannot carry (an object a call site passed as a field) is shown
        # by its str().
        return orjson.dumps(line, default=str).decode()


def _lines(block: str) -> str:
    """A traceback with each line escaped and bounded; JSON escapes the
    newlines between them."""
    return "\n".join(loggable(part, LINE_LIMIT) for part in block.split("\n"))


def continued(block: str) -> str:
    """``block``'s lines, each escaped and indented, each after a newline."""
    return "".join(f"\n{CONTINUATION}{loggable(part, LINE_LIMIT)}" for part in block.split("\n"))


def forgiving(stream: TextIO) -> TextIO:
    """``stream``, set to write an escape for what its encoding cannot
    carry rather than raise (stderr does already; a reopened one may not)."""
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="backslashreplace")
    return stream


def configure(level: str | int, fmt: str = FORMAT, *, json: bool = False) -> None:
    """The root logger writes to stderr through ``OneLineFormatter``, or
    ``JsonLineFormatter`` with ``json``."""
    handler = logging.StreamHandler(forgiving(sys.stderr))
    handler.setFormatter(JsonLineFormatter() if json else OneLineFormatter(fmt))
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=level, handlers=[handler])
