"""scan2pay_common.timefmt: integer milliseconds inside, RFC 3339 UTC on the wire."""

from __future__ import annotations

import re
import time

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.timefmt import from_rfc3339, now_ms, to_rfc3339

WIRE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1764000000123, "2025-11-24T16:00:00.123Z"),
        (1764000000000, "2025-11-24T16:00:00.000Z"),
        (1764000000007, "2025-11-24T16:00:00.007Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (951782400000, "2000-02-29T00:00:00.000Z"),
        (4102444799999, "2099-12-31T23:59:59.999Z"),
    ],
)
def test_to_rfc3339(ms: int, text: str) -> None:
    assert to_rfc3339(ms) == text
    assert from_rfc3339(text) == ms


def test_to_rfc3339_always_has_milliseconds_and_z() -> None:
    for ms in (0, 999, 1000, 1764000000123, 1764000000100):
        assert WIRE.fullmatch(to_rfc3339(ms))


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2025-11-24T16:00:00Z", 1764000000000),
        ("2025-11-24T16:00:00.1Z", 1764000000100),
        ("2025-11-24T16:00:00.123z", 1764000000123),
        ("2025-11-24T16:00:00.123+00:00", 1764000000123),
        ("2025-11-24T17:00:00.123+01:00", 1764000000123),
        ("2025-11-24T11:00:00.123-05:00", 1764000000123),
        ("2025-11-24T16:00:00.123456Z", 1764000000123),  # below a millisecond: truncated
    ],
)
def test_from_rfc3339(text: str, ms: int) -> None:
    assert from_rfc3339(text) == ms


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-24T16:00:00",
        "2025-11-24T16:00:00.123",
        "2025-11-24",
        "",
        "garbage",
        "2025-13-01T00:00:00Z",
        "2025-11-31T00:00:00Z",
        "2025-11-24T25:00:00Z",
        "1764000000123",
    ],
)
def test_bad_or_zoneless_timestamps_are_invalid_timestamp(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        from_rfc3339(text)
    assert caught.value.code == "invalid_timestamp"


@pytest.mark.parametrize("value", [None, 1764000000123, 1.5, b"2025-11-24T16:00:00Z"])
def test_non_strings_are_invalid_timestamp(value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        from_rfc3339(value)
    assert caught.value.code == "invalid_timestamp"


def test_now_ms_is_integer_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = now_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int)
    assert before <= now <= after
