"""Secrets never reach the log, whichever logger writes them.

Our own log lines name routes by pattern and never print a key, but a
library's can: aiohttp's "Error handling request" quotes the raw header
line that its parser refused, key and all (a key read from a file with
CRLF line ends carries a stray CR, which is enough). So every handler of
every part carries this filter: it masks anything shaped like a secret we
issue (merchant keys, wallet tokens, webhook secrets, payment codes, the
board's cookies, the demo's token, passwords in URLs) in the message and in
the traceback, and keeps enough of the shape to tell what was there. Card
numbers are not ours to handle, but a client may send one anyway: a run of
13 to 19 digits (spaces or dashes between them allowed) that passes the
Luhn check is masked too.
"""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"
# A record whose ``extra`` carries a dict under this name was made by the
# program from its own values (the PSP's access log: method, route pattern,
# status, time, a parsed address; scan2pay_common/logformat.py writes the
# dict out in JSON). Its message is still searched for our secrets' shapes,
# but not for card numbers: the search costs a tenth of such a record.
FIELDS_ATTR = "fields"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Keys, tokens and webhook secrets by their prefixes.
    (re.compile(r"\b(mk|wt|whsec)_[A-Za-z0-9_-]{6,}"), rf"\1_{MASK}"),
    # Whatever follows "Bearer": a malformed header may carry anything.
    (re.compile(r"\b((?i:bearer))\s+[^\s\"',;]+"), rf"\1 {MASK}"),
    # The merchant board's session and sign-in cookies.
    (re.compile(r"\b((?i:__host-)?s2p-(?:merchant|signin))=[^;\s\"']+"), rf"\1={MASK}"),
    # Payment codes in a path, and bare ones (160 bits in base32) on a line
    # that speaks of a code.
    (re.compile(r"(/[QS]/)[A-Za-z2-7]{16,}"), rf"\1{MASK}"),
    (re.compile(r"\b[A-Z2-7]{32}\b"), MASK),
    # The demo's token, in its header or its form field.
    (re.compile(r"\b((?i:x-demo-token):\s*|token=)[^\s&;\"']+"), rf"\1{MASK}"),
    # A password in a URL (mqtt://user:password@host).
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\1{MASK}@"),
]
# What every line that may hold a secret holds, in lower case. Most lines
# hold none, and substring tests cost a tenth of the patterns' searches
# (Python's regular expressions find no literal to skip ahead by in "\b...").
_MARKERS = ("mk_", "wt_", "whsec_", "bearer", "s2p-", "/q/", "/s/", "token", "://", "code")


# A card-like number: 13 to 19 digits, single spaces or dashes between them.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# The cheap test first: thirteen digits with at most one separator between.
_DIGITS = re.compile(r"\d[\d -]{11,}\d")


def luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = match.group().replace(" ", "").replace("-", "")
    return f"[card {MASK}]" if luhn(digits) else match.group()


def redact(text: str, *, cards: bool = True) -> str:
    """``text`` with every secret's shape masked; the same object when
    there was none. ``cards``: card-like numbers too."""
    if cards and _DIGITS.search(text) is not None:
        masked = _CARD.sub(_mask_card, text)
        if masked != text:  # else the same object: the filter leaves such a record be
            text = masked
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message and traceback; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, cards=not hasattr(record, FIELDS_ATTR))
        if masked is not message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_plain = logging.Formatter()
