"""Identifiers: their shape, their order in time, their uniqueness."""

from __future__ import annotations

import re
import time

from psp_server.core.credentials import new_code, new_id

ID = re.compile(r"co_([0-9a-f]{12})([0-9a-f]{16})")


def test_an_id_is_the_prefix_the_time_in_ms_and_64_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    found = ID.fullmatch(new_id("co"))
    after = time.time_ns() // 1_000_000
    assert found is not None
    assert before <= int(found.group(1), 16) <= after


def test_ids_made_later_sort_later() -> None:
    first = new_id("co")
    time.sleep(0.002)
    assert new_id("co") > first


def test_ids_made_in_the_same_millisecond_differ_in_their_random_part() -> None:
    ids = [new_id("evt") for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert len({i[-16:] for i in ids}) == len(ids)


def test_codes_stay_fully_random() -> None:
    # The code is the QR's secret: no clock in it, 160 bits in base32.
    codes = [new_code() for _ in range(1000)]
    assert all(re.fullmatch(r"[A-Z2-7]{32}", c) for c in codes)
    assert len({c[:8] for c in codes}) == len(codes)
