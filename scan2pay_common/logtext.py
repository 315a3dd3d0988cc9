"""Text from outside (MQTT payloads, HTTP bodies and headers, names, ids,
error messages that quote them) made safe to put in a log line.

A log line is read by terminals, pagers, log shippers and test runners.
Raw, such text could forge a record (a newline, a carriage return), drive
the reader's terminal (ANSI escapes), reorder what is shown (bidi
overrides), or stop a UTF-8 encoder (a lone surrogate: pytest-xdist's
worker once died on one while sending its report). Each of those
characters becomes a visible escape instead (``\\n``, ``\\x1b``,
``\\ud867``), and the text is cut to a few hundred characters, so that a
megabyte payload costs a log no more than a short one.

Backslashes are left alone: a literal ``\\n`` typed by a sender reads like
an escaped newline, which misleads nobody about where a record ends.
"""

from __future__ import annotations

import codecs
import re

LIMIT = 200  # characters shown of one value: enough to recognise it

# C0, DEL and C1 controls (CR, LF and ESC among them), the bidi controls
# (U+061C, U+200E/F, U+202A-E, U+2066-9), the line and paragraph
# separators, and the surrogates, which are not text at all. Every one of
# them is unprintable to ``str.isprintable``, which is the cheap test.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def loggable(value: object, limit: int | None = LIMIT) -> str:
    """``value`` (a str, bytes, or anything ``str()`` can show) as one line
    of printable text, cut after ``limit`` characters (``None``: never)
    with a note of how much was left out: ``…(+1048376 chars)``, or
    ``bytes`` for bytes. Bytes are read as UTF-8; a byte that is not
    becomes ``\\xff``. The result's length is at most ``limit`` plus the
    note, escapes included."""
    if type(value) is str:
        text = value
    elif isinstance(value, bytes | bytearray):
        return _from_bytes(value, limit)
    else:
        text = _text_of(value)
    if (limit is None or len(text) <= limit) and text.isprintable():
        return text  # most text: one pass in C, nothing copied
    shown, used = _escaped(text if limit is None else text[:limit], limit, raw=False)
    return shown if used == len(text) else f"{shown}…(+{len(text) - used} chars)"


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not take the log call with it
        return f"<a {type(value).__name__} that cannot be shown>"


def _from_bytes(value: bytes | bytearray, limit: int | None) -> str:
    # Four bytes give at least one character: this window holds the
    # ``limit`` characters shown without decoding the rest. The incremental
    # decoder holds back a character cut at the window's end.
    window = value if limit is None else value[: 4 * limit]
    whole = len(window) == len(value)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    text = decoder.decode(window, final=whole)
    head = text if limit is None else text[:limit]
    shown, used = _escaped(head, limit, raw=True)
    if whole and used == len(text):
        return shown
    left = len(value) - len(text[:used].encode("utf-8", "surrogateescape"))
    return f"{shown}…(+{left} bytes)"


def _escaped(text: str, limit: int | None, *, raw: bool) -> tuple[str, int]:
    """``text`` with its unsafe characters escaped, at most ``limit``
    characters long, and how many characters of ``text`` that shows.
    ``raw``: the text was decoded from bytes with surrogateescape, whose
    surrogates stand for bytes (shown as ``\\xff``)."""
    if text.isprintable():
        return text, len(text)
    escape = _escape_raw if raw else _escape
    escaped = _UNSAFE.sub(lambda match: escape(match.group()), text)
    if limit is None or len(escaped) <= limit:
        return escaped, len(text)
    # Escapes made it too long: keep whole characters while they fit (a
    # character at a time, but only for hostile text, and a short one).
    pieces: list[str] = []
    room = limit
    for used, char in enumerate(text):
        piece = escape(char) if _UNSAFE.match(char) else char
        if len(piece) > room:
            return "".join(pieces), used
        pieces.append(piece)
        room -= len(piece)
    return "".join(pieces), len(text)


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _escape_raw(char: str) -> str:
    code = ord(char)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else _escape(char)
