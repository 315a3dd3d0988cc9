"""The soundbox's record of what it said: each event claimed once, across
a reopen (a daemon's restart) too; bounded; the catch-up's cursor; a
refund's total."""

from __future__ import annotations

from pathlib import Path

from terminal import spoken
from terminal.spoken import SpokenRecord


def test_an_event_is_claimed_once_even_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sound" / "spoken.sqlite3"
    record = SpokenRecord(path)
    assert record.claim("evt_1", "co_1", 0, 1000)
    assert not record.claim("evt_1", "co_1", 0, 2000)
    record.close()
    again = SpokenRecord(path)
    assert not again.claim("evt_1", "co_1", 0, 3000)
    assert again.claim("evt_2", "co_1", 0, 3000)
    assert again.count() == 2


def test_the_cursor_only_moves_on_and_survives(tmp_path: Path) -> None:
    path = tmp_path / "spoken.sqlite3"
    record = SpokenRecord(path)
    assert record.seq == 0
    record.advance(7)
    record.advance(3)  # an older event heard late
    assert record.seq == 7
    record.close()
    assert SpokenRecord(path).seq == 7


def test_a_refund_knows_what_was_refunded_before(tmp_path: Path) -> None:
    record = SpokenRecord(tmp_path / "spoken.sqlite3")
    assert record.refunded_before("co_1", "evt_r1") == 0
    record.claim("evt_r1", "co_1", 300, 1)
    assert record.refunded_before("co_1", "evt_r2") == 300
    assert record.refunded_before("co_1", "evt_r1") == 0  # itself does not count
    assert record.refunded_before("co_2", "evt_r3") == 0


def test_only_the_newest_rows_are_kept(tmp_path: Path) -> None:
    record = SpokenRecord(tmp_path / "spoken.sqlite3")
    for n in range(spoken.KEEP + 50):
        assert record.claim(f"evt_{n}", f"co_{n}", 0, n)
    assert record.count() == spoken.KEEP
    assert not record.claim(f"evt_{spoken.KEEP + 49}", "co", 0, 0)  # the newest are there
    assert record.claim("evt_0", "co_0", 0, 0)  # the oldest went
