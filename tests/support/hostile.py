"""Text that must never reach a log raw, and the check that a record's
message is safe to read.

The checks are written here on their own rather than with the code's
escaping (scan2pay_common/logtext.py), so that a mistake there is not
repeated in the test."""

from __future__ import annotations

import re

# Bytes that are not UTF-8: a lead byte alone, and a surrogate encoded.
INVALID_UTF8 = b"\xff\xfe\xed\xa0\x80"
NUL = "\x00"
FORGED = "\r\n2026-01-01 00:00:00,000 CRITICAL psp_server forged record"
ANSI = "\x1b[2J\x1b[31;1mRED\x1b[0m\x1b]0;title\x07\x9b31m"
BIDI = "\u202etxt.exe\u202c\u2066\u2069\u200f"
MEGABYTE = "M" * (1 << 20)

# The hostile texts, by name.
TEXTS = {
    # Lone surrogates (apart: side by side, JSON would read them as one
    # character), sent in JSON as escapes, which orjson refuses and the
    # standard module, the strict reader's fallback, lets through.
    "surrogates": "\ud867.\udcff",
    "nul": NUL,
    "forged": FORGED,
    "ansi": ANSI,
    "bidi": BIDI,
}

# C0, DEL, C1, bidi controls, line and paragraph separators, surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def message_problem(message: str, *, longest: int = 1000) -> str | None:
    """Why ``message`` (one record's text) is not safe, or None."""
    found = _UNSAFE.search(message)
    if found:
        return f"{found.group()!r} at {found.start()}"
    if len(message) > longest:
        return f"{len(message)} characters"
    return None
