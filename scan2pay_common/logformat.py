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

import io
import logging
import sys
from typing import TextIO

from .logredact import RedactSecrets
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


def continued(block: str) -> str:
    """``block``'s lines, each escaped and indented, each after a newline."""
    return "".join(f"\n{CONTINUATION}{loggable(part, LINE_LIMIT)}" for part in block.split("\n"))


def forgiving(stream: TextIO) -> TextIO:
    """``stream``, set to write an escape for what its encoding cannot
    carry rather than raise (stderr does already; a reopened one may not)."""
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="backslashreplace")
    return stream


def configure(level: str | int, fmt: str = FORMAT) -> None:
    """The root logger writes to stderr through ``OneLineFormatter``."""
    handler = logging.StreamHandler(forgiving(sys.stderr))
    handler.setFormatter(OneLineFormatter(fmt))
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=level, handlers=[handler])
