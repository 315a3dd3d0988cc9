"""The SQLite database holds the signing key and the webhooks' secrets:
the PSP creates it, and SQLite its -wal and -shm files, readable by the
owner only, and it warns at start about one that others can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.support.process import PspProcess, create_merchant


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    usual = os.umask(0o022)  # the usual umask, under which files are made 0644
    db = tmp_path / "psp.db"
    try:
        create_merchant(db)  # the CLI makes the file
    finally:
        os.umask(usual)
    server = PspProcess(db)
    try:
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert "open to other users" not in server.log()
    finally:
        server.stop()


def test_a_database_others_can_read_is_warned_about_at_start(tmp_path: Path) -> None:
    db = tmp_path / "psp.db"
    create_merchant(db)
    db.chmod(0o644)
    server = PspProcess(db)
    try:
        log = server.log()
    finally:
        server.stop()
    assert f"{db} is open to other users (mode -rw-r--r--)" in log
    assert "chmod 600" in log
