"""The PostgreSQL worker's waiting statements, on a real server: a statement
is sent when something reads an outcome or the operation ends, in the order
the operation wrote them, and an error in one that waited fails the whole
operation and leaves nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from psp_server.core.errors import StorageError
from psp_server.storage.postgres import PostgresWorker


@pytest.fixture
async def worker(pg_dsn: str) -> AsyncIterator[PostgresWorker]:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    running = PostgresWorker(pg_dsn, size=2)
    yield running
    await running.close()


def _notes(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT n, text FROM notes ORDER BY n").fetchall()


def _last_query(dsn: str, pid: int) -> str:
    """What the server last received from the backend ``pid``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        assert row is not None
        return str(row[0])


async def test_writes_nobody_reads_are_sent_at_the_end_and_committed(
    worker: PostgresWorker, pg_dsn: str
) -> None:
    def write(conn: Any) -> str:
        for n in range(3):
            conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (n, f"note {n}"))
        return "done"

    assert await worker.run(write) == "done"
    assert _notes(pg_dsn) == [(0, "note 0"), (1, "note 1"), (2, "note 2")]


async def test_a_read_sees_every_write_before_it_in_order(worker: PostgresWorker) -> None:
    def write_then_read(conn: Any) -> tuple[int, list[tuple[str]], int]:
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "first"))
        changed = conn.execute("UPDATE notes SET text = ? WHERE n = ?", ("second", 1))
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (2, "third"))
        rows = conn.execute("SELECT text FROM notes ORDER BY n").fetchall()
        # Read after the later statements went: its outcome was kept.
        return changed.rowcount, rows, conn.execute("SELECT count(*) FROM notes").fetchone()[0]

    rowcount, rows, count = await worker.run(write_then_read)
    assert rowcount == 1
    assert rows == [("second",), ("third",)]
    assert count == 2


async def test_an_error_in_a_waiting_statement_fails_the_operation_and_leaves_nothing(
    worker: PostgresWorker, pg_dsn: str
) -> None:
    reached: list[str] = []

    def clash(conn: Any) -> None:
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "kept?"))
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "same key"))
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (2, "after"))
        reached.append("wrote")
        conn.execute("SELECT count(*) FROM notes").fetchone()
        reached.append("read")

    with pytest.raises(StorageError, match="notes_pkey"):
        await worker.run(clash)
    # The error came where the operation first read, not at the INSERT.
    assert reached == ["wrote"]
    assert _notes(pg_dsn) == []
    # The connection went back to the pool in a usable state.
    await worker.run(lambda conn: conn.execute("INSERT INTO notes VALUES (?, ?)", (5, "ok")))
    assert _notes(pg_dsn) == [(5, "ok")]


async def test_an_error_in_the_last_waiting_statements_fails_the_operation(
    worker: PostgresWorker, pg_dsn: str
) -> None:
    def clash_at_the_end(conn: Any) -> str:
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "one"))
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "one again"))
        return "no error seen yet"

    with pytest.raises(StorageError, match="notes_pkey"):
        await worker.run(clash_at_the_end)
    assert _notes(pg_dsn) == []


async def test_a_write_waits_on_the_client_until_a_read(
    worker: PostgresWorker, pg_dsn: str
) -> None:
    """What the waiting is for: a payment's writes before its next read go
    to the server together, not one round trip each."""
    seen: list[str] = []

    def watched(conn: Any) -> None:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "one"))
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (2, "two"))
        seen.append(_last_query(pg_dsn, pid))
        conn.execute("SELECT count(*) AS after_the_writes FROM notes").fetchone()
        seen.append(_last_query(pg_dsn, pid))

    await worker.run(watched)
    assert seen == ["SELECT pg_backend_pid()", "SELECT count(*) AS after_the_writes FROM notes"]


async def test_an_operation_that_raises_after_its_writes_went_out_leaves_nothing(
    worker: PostgresWorker, pg_dsn: str
) -> None:
    def half_done(conn: Any) -> None:
        conn.execute("INSERT INTO notes (n, text) VALUES (?, ?)", (1, "sent"))
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
        raise ValueError("the operation's own rule")

    with pytest.raises(ValueError, match="own rule"):
        await worker.run(half_done)
    assert _notes(pg_dsn) == []
    await worker.run(lambda conn: conn.execute("INSERT INTO notes VALUES (?, ?)", (2, "next")))
    assert _notes(pg_dsn) == [(2, "next")]
