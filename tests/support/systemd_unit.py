"""Checks of the systemd units we ship (the PSP's, the terminal's): their
settings read as systemd reads them, and ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ANALYZE_HINT = (
    "systemd-analyze is not installed; the tests check the shipped units with it. "
    "Install it with `sudo apt-get install systemd` (scripts/ensure-system-deps does this)."
)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, a key's values in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def verify_unit(unit: Path, program: str, tmp_path: Path) -> None:
    """``systemd-analyze verify`` passes ``unit`` with no warning at all (it
    exits 0 on an unknown key, with a warning). verify checks that
    ExecStart's ``program`` is there: a stand-in takes the venv's place."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail(ANALYZE_HINT, pytrace=False)
    stand_in = tmp_path / Path(program).name
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    text = unit.read_text()
    assert program in text
    checked = tmp_path / unit.name
    checked.write_text(text.replace(program, str(stand_in)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(checked)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
