"""The SQLite writer on its own: group commit with statements on the loop's
thread and the COMMIT on the commit thread (psp_server/storage/sqlite_worker.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from psp_server.core.errors import StorageError
from psp_server.storage.sqlite_worker import SqliteWorker, connect


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "w.db")
    conn = connect(path)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.close()
    return path


def keys(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")]
    finally:
        conn.close()


def insert(key: str, *, then_fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def op(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t (k) VALUES (?)", (key,))
        if then_fail:
            raise ValueError(f"{key} failed after writing")
        return key

    return op


async def test_a_failing_job_takes_only_its_own_writes_with_it(db: str) -> None:
    worker = SqliteWorker(db)
    # Submitted in one loop iteration, so they share one group.
    results = await asyncio.gather(
        worker.run(insert("a")),
        worker.run(insert("b", then_fail=True)),
        worker.run(insert("c")),
        return_exceptions=True,
    )
    await worker.close()
    assert results[0] == "a"
    assert results[2] == "c"
    assert isinstance(results[1], ValueError)
    assert keys(db) == ["a", "c"]


async def test_a_group_shares_one_commit(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = SqliteWorker(db)
    commits = 0
    real_commit = worker._commit

    def counting_commit() -> None:
        nonlocal commits
        commits += 1
        real_commit()

    monkeypatch.setattr(worker, "_commit", counting_commit)
    await asyncio.gather(*(worker.run(insert(f"k{n}")) for n in range(50)))
    await worker.close()
    assert commits == 1
    assert len(keys(db)) == 50


async def test_an_answer_means_the_row_is_committed_and_readable(db: str) -> None:
    worker = SqliteWorker(db)
    await worker.run(insert("x"))
    assert keys(db) == ["x"]  # another connection sees it: it is committed
    found = await worker.read(lambda c: c.execute("SELECT k FROM t").fetchall())
    assert found == [("x",)]
    await worker.close()


async def test_another_writer_makes_it_wait_off_the_loop(db: str) -> None:
    worker = SqliteWorker(db)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the CLI, say, holds the write lock
    pending = asyncio.create_task(worker.run(insert("late")))
    started = time.monotonic()
    ticks = 0
    while time.monotonic() - started < 0.3:
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks >= 15, "the event loop was blocked while waiting for the lock"
    assert not pending.done()
    other.execute("INSERT INTO t (k) VALUES ('first')")
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(pending, 5) == "late"
    await worker.close()
    assert keys(db) == ["first", "late"]


async def test_close_commits_what_was_accepted(db: str) -> None:
    worker = SqliteWorker(db)
    pending = [asyncio.create_task(worker.run(insert(f"k{n}"))) for n in range(10)]
    await asyncio.sleep(0)  # accepted, the group started
    await worker.close()
    assert [p.result() for p in pending] == [f"k{n}" for n in range(10)]
    assert len(keys(db)) == 10
    with pytest.raises(StorageError, match="closed"):
        await worker.run(insert("too late"))
