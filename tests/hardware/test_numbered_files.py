"""Numbered files in a folder: the highest number among the entries a
pattern names, and a file replaced whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardware.numbered_files import highest_number, write_atomically

_NAME = re.compile(r"item-(\d+)\.bin")


def test_the_highest_number_counts_only_the_pattern_s_names(tmp_path: Path) -> None:
    folder = tmp_path / "made" / "here"
    assert highest_number(folder, _NAME) == 0
    assert folder.is_dir()
    for name in ("item-000002.bin", "item-000010.bin", "item-99.txt", "other-000500.bin"):
        (folder / name).write_bytes(b"")
    assert highest_number(folder, _NAME) == 10


def test_a_file_is_replaced_whole_and_no_temporary_stays(tmp_path: Path) -> None:
    path = tmp_path / "item-000001.bin"
    path.write_bytes(b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomically(target, b"cannot replace a folder")
    assert [entry.name for entry in tmp_path.iterdir()] == ["a-folder"]
