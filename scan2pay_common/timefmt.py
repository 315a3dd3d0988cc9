"""Timestamps: integer milliseconds inside, RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime, timedelta

from .errors import InvalidValue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 3339's date-time; fromisoformat alone also takes ISO 8601's other forms.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=64)
def _second(seconds: int) -> str:
    # strftime is most of the cost, and a busy server stamps the same few
    # seconds (now, now + expiry) thousands of times.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def to_rfc3339(ms: int) -> str:
    """1764000000123 -> ``"2025-11-24T16:00:00.123Z"``."""
    seconds, millis = divmod(ms, 1000)
    return _second(seconds) + _MILLIS[millis]


_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))


def from_rfc3339(text: object) -> int:
    if not isinstance(text, str):
        raise InvalidValue("invalid_timestamp", f"{text!r} is not an RFC 3339 timestamp")
    return _parse(text)


# The same stamp is read several times over a checkout's life (its snapshot,
# its event, its ticket); refusals raise and are not cached.
@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> int:
    if not _RFC3339.fullmatch(text):
        raise InvalidValue("invalid_timestamp", f"{text!r} is not an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidValue("invalid_timestamp", f"{text!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise InvalidValue("invalid_timestamp", f"{text!r} has no time zone")
    return (parsed - _EPOCH) // timedelta(milliseconds=1)
