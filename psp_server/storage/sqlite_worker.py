"""One thread that owns the SQLite connection and commits in groups.

Requests hand it small functions; it runs every function that is waiting
inside one transaction, each in a savepoint of its own, and commits them
with one fsync (group commit). A caller's future is resolved only after the
COMMIT returned, so an answer sent to a client means the row is on disk.
One writer also means SQLite never answers "database is locked" to us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]

MAX_GROUP = 256


def connect(path: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open SQLite database {path!r}: {exc}") from exc
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: the WAL is fsynced at every commit, so a commit survives power loss.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Other processes (the CLI) may write while the server runs.
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class _Job:
    __slots__ = ("error", "future", "loop", "operation", "result")

    def __init__(
        self, operation: Operation, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.operation = operation
        self.future = future
        self.loop = loop
        self.result: Any = None
        self.error: BaseException | None = None


def _settle(job: _Job) -> None:
    if job.future.done():  # the caller went away; the work stands regardless
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.result)


class SqliteWorker:
    def __init__(self, path: str) -> None:
        self._conn = connect(path)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._closed = False
        self._thread.start()

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(operation, future, loop))
        return await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._conn.close()

    def _serve(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                group.append(job)
            self._commit_group(group)
            for job in group:
                job.loop.call_soon_threadsafe(_settle, job)
            if stop:
                return

    def _commit_group(self, group: list[_Job]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in group:
                job.error = StorageError(f"cannot start a transaction: {exc}")
            return
        for job in group:
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.operation(conn)
            except BaseException as exc:
                job.error = exc
                conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("commit failed: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for job in group:
                if job.error is None:
                    job.error = StorageError(f"commit failed: {exc}")
                    job.result = None
