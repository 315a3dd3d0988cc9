"""Text that must never reach a log raw, and the checks that a log (a
record's message, or a process's whole stderr) is safe to read.

The checks are written here on their own rather than with the code's
escaping (scan2pay_common/logtext.py), so that a mistake there is not
repeated in the test."""

from __future__ import annotations

import json
import re

from scan2pay_common.logformat import LINE_LIMIT

# Bytes that are not UTF-8: a lead byte alone, and a surrogate encoded.
INVALID_UTF8 = b"\xff\xfe\xed\xa0\x80"
NUL = "\x00"
FORGED = "\r\n2026-01-01 00:00:00,000 CRITICAL psp_server forged record"
ANSI = "\x1b[2J\x1b[31;1mRED\x1b[0m\x1b]0;title\x07\x9b31m"
BIDI = "\u202etxt.exe\u202c\u2066\u2069\u200f"
MEGABYTE = "M" * (1 << 20)
# What an HTTP parser lets through in a header's value (a tab, and bytes
# past ASCII, which aiohttp decodes as UTF-8 or, failing that, as lone
# surrogates): a bidi override, an 8-bit ANSI CSI, bytes that are not UTF-8.
HEADER_VALUE = "\u202e\t\u009b31m".encode() + INVALID_UTF8

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
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
CONTINUATION = "  | "  # written out here too: the test's own idea of the format


def message_problem(message: str, *, longest: int = 1000) -> str | None:
    """Why ``message`` (one record's text) is not safe, or None."""
    found = _UNSAFE.search(message)
    if found:
        return f"{found.group()!r} at {found.start()}"
    if len(message) > longest:
        return f"{len(message)} characters"
    return None


def log_problems(raw: bytes, *, longest: int = 1000, largest: int = 64 * 1024) -> list[str]:
    """What is wrong with a process's log, as it was written to its stderr:
    empty when it is UTF-8, bounded, one line per record (a record's line
    starts with a time stamp; a traceback's lines with CONTINUATION), with
    no control character, ANSI escape, bidi control or surrogate. A
    record's line is at most ``longest`` characters: what our call sites
    log is cut well before; a traceback's line, which may quote a whole
    request in a library's words, at most the formatter's cut."""
    problems: list[str] = []
    if len(raw) > largest:
        problems.append(f"the log has {len(raw)} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [*problems, f"not UTF-8: {exc}"]
    if text and not text.endswith("\n"):
        problems.append("the last line is not ended")
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {number} ({line[:80]!r})"
        record = _STAMP.match(line) is not None
        if not (record or line.startswith(CONTINUATION)):
            problems.append(f"{where} is neither a record nor a continuation")
        bound = longest if record else len(CONTINUATION) + LINE_LIMIT + 40
        problem = message_problem(line, longest=bound)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _json_with(obj: dict[str, object]) -> bytes:
    # ensure_ascii: lone surrogates go out as JSON escapes, as an attacker
    # would write them (a str holding one cannot be encoded as UTF-8).
    return json.dumps(obj, ensure_ascii=True).encode()


def quoting_payloads(base: dict[str, object], *, field: str | None = None) -> list[bytes]:
    """JSON objects that a strict reader refuses with a message quoting the
    hostile text: ``base`` with each hostile text (and a megabyte) as the
    name of a field it does not know, or as the value of ``field``; then
    the raw forms that no JSON reader takes (bytes that are not UTF-8, a
    raw NUL and CR LF inside a string, plain hostile text)."""
    hostile = [*TEXTS.values(), MEGABYTE]
    payloads = [_json_with({**base, text: 1}) for text in hostile]
    if field is not None:
        payloads += [_json_with({**base, field: text}) for text in hostile]
    payloads += [
        b'{"' + INVALID_UTF8 + b'": 1}',
        b'{"a\x00b' + FORGED.encode() + b'": 1}',
        (FORGED + ANSI).encode(),
        MEGABYTE.encode() + INVALID_UTF8,
    ]
    return payloads
