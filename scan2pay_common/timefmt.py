"""Timestamps: integer milliseconds inside, RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from .errors import InvalidValue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_rfc3339(ms: int) -> str:
    """1764000000123 -> ``"2025-11-24T16:00:00.123Z"``."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def from_rfc3339(text: object) -> int:
    if not isinstance(text, str):
        raise InvalidValue("invalid_timestamp", "timestamp must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidValue("invalid_timestamp", f"{text!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise InvalidValue("invalid_timestamp", f"{text!r} has no time zone")
    return (parsed - _EPOCH) // timedelta(milliseconds=1)
