"""The SQLite writer: group commit, with the statements on the event loop's
thread and only the COMMIT (the fsync) on a thread of its own.

Requests hand it small functions. All that are waiting run in one
transaction and are committed with one fsync (group commit). A caller's
future is resolved only after the COMMIT returned, so an answer sent to a
client means the row is on disk. One writer also means SQLite never answers
"database is locked" to us.

Why the statements run on the loop's thread: Python's sqlite3 releases the
GIL around every statement. With the statements on a second thread, each
one was two GIL hand-offs with the thread serving HTTP, and the profile
showed the two threads waiting on each other for more time than either
spent working (a statement averaged 77 us under load; alone it takes 5).
The fsync is the one long wait, so it alone goes to the commit thread, and
the loop goes on serving requests while the disk works; the next group's
statements wait for that COMMIT, which is when they gather into a group.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from psp_server.core.errors import StorageError, StorageUnavailable
from psp_server.storage.availability import Availability

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]

MAX_GROUP = 256
# How long a transaction may wait for another process (the CLI) that holds
# the write lock; the wait happens on the commit thread, never on the loop.
LOCK_WAIT = 10.0


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
    __slots__ = ("error", "future", "operation", "result")

    def __init__(self, operation: Operation, future: asyncio.Future[Any]) -> None:
        self.operation = operation
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the caller went away; the work stands regardless
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


# Errors of the file rather than of the work: the disk or the folder is away.
_UNAVAILABLE = {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL}


def _is_unavailable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNAVAILABLE


class SqliteWorker:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn = connect(path)
        # SQLite goes on writing to a file whose folder was moved or deleted
        # (the inode stays open), and those commits would be gone at the next
        # start: each group first checks that the path is still this file.
        self._file = _identity(path)
        self.availability = Availability()
        # The loop's thread never waits for a lock: a busy BEGIN is retried
        # on the commit thread (``_begin_waiting``).
        self._conn.execute("PRAGMA busy_timeout=0")
        # A group's savepoint keeps each page's first image in a statement
        # journal; in a temporary file, writing it was 8% of the request
        # thread's time. In memory it is gone at COMMIT either way.
        self._conn.execute("PRAGMA temp_store=MEMORY")
        self._reader = connect(path)
        # A reader waits for a lock only in rare moments (WAL recovery); it
        # then hands its read to the writer rather than block the loop.
        self._reader.execute("PRAGMA busy_timeout=0")
        self._reader.execute("PRAGMA query_only=ON")
        self._committer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-commit"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Job] = []
        self._busy = False  # a group is between BEGIN and the end of its COMMIT
        self._closed = False
        self._drained: asyncio.Future[None] | None = None  # close() waits on it

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Runs ``operation`` in the next group's transaction; returns its
        result once that transaction is on disk."""
        if self._closed:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._busy or self._pending:
                raise StorageError("the database is in use by another event loop")
            self._loop = loop  # a later asyncio.run(), as the CLI and tests do
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Job(operation, future))
        if not self._busy:
            self._busy = True
            # Later in this loop iteration, so that every request that has
            # its work ready by then joins the group.
            loop.call_soon(self._start_group)
        return await future

    async def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """A point read (a row found by its key) on the reader connection,
        at once. In WAL mode a reader sees the last commit without waiting
        for the writer, and an indexed row costs microseconds."""
        if self._closed:
            raise StorageError("the database is closed")
        try:
            return operation(self._reader)
        except sqlite3.OperationalError:
            return await self.run(operation)
        finally:
            if self._reader.in_transaction:  # a cursor left open pins a snapshot
                self._reader.rollback()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._busy:  # what was accepted is committed first
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        await asyncio.to_thread(self._committer.shutdown)
        self._conn.close()
        self._reader.close()

    # The group's life: _start_group -> (_begun) -> _run_group -> _commit
    # on the commit thread -> _committed -> the next group.

    def _start_group(self) -> None:
        group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
        moved = self._file_moved()
        if moved:
            self._fail(group, self._unavailable(moved))
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                self._fail(group, self._error("cannot start a transaction", exc))
                return
            # Another process writes: wait for it off the loop.
            waiting = self._committer.submit(self._begin_waiting)
            waiting.add_done_callback(lambda done: self._from_thread(self._begun, group, done))
            return
        self._run_group(group)

    def _begin_waiting(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        delay = 0.001
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _begun(self, group: list[_Job], waited: concurrent.futures.Future[None]) -> None:
        exc = waited.exception()
        if exc is not None:
            self._fail(group, self._error("cannot start a transaction", exc))
            return
        self._run_group(group)

    def _run_group(self, group: list[_Job]) -> None:
        """The fast path runs the jobs one after another; only when one
        raises is the group's work rolled back and run again with a
        savepoint around each job, so that the failed job's writes go and
        the others' stay. Jobs raise rarely (a refusal is a result, not an
        exception), and two statements per job would be a sixth of the work
        of a payment."""
        conn = self._conn
        try:
            conn.execute("SAVEPOINT grp")
            try:
                for job in group:
                    job.result = job.operation(conn)
            except BaseException:  # noqa: BLE001 - whatever a job raised, the group reruns job by job
                conn.execute("ROLLBACK TO grp")
                self._run_isolated(group)
            conn.execute("RELEASE grp")
        except sqlite3.Error as exc:  # the savepoints themselves failed
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._fail(group, self._error("transaction failed", exc))
            return
        committing = self._committer.submit(self._commit)
        committing.add_done_callback(lambda done: self._from_thread(self._committed, group, done))

    def _run_isolated(self, group: list[_Job]) -> None:
        conn = self._conn
        for job in group:
            job.result = job.error = None
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.operation(conn)
            except BaseException as exc:  # noqa: BLE001 - the job's error goes to its caller, raised there
                job.error = exc
                conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")

    def _commit(self) -> None:
        """On the commit thread: the fsync."""
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def _committed(self, group: list[_Job], committing: concurrent.futures.Future[None]) -> None:
        exc = committing.exception()
        if exc is not None:
            error = self._error("commit failed", exc)
            if not isinstance(error, StorageUnavailable):
                log.error("commit failed: %s", exc)
            for job in group:
                if job.error is None:
                    job.error = error
                    job.result = None
        else:
            self.availability.back()
        self._finish(group)

    def _file_moved(self) -> str | None:
        """Why the database's path no longer names the open file, if it does not."""
        try:
            now = _identity(self._path)
        except OSError as exc:
            return f"the database file {self._path!r} is not there ({exc.strerror})"
        if now != self._file:
            return f"the database file {self._path!r} was replaced by another file"
        return None

    def _error(self, what: str, exc: BaseException) -> StorageError:
        if isinstance(exc, sqlite3.Error) and _is_unavailable(exc):
            return self._unavailable(f"{what}: {exc}")
        self.availability.failed()
        return StorageError(f"{what}: {exc}")

    def _unavailable(self, reason: str) -> StorageUnavailable:
        self.availability.lost(reason)
        return StorageUnavailable(reason)

    def _fail(self, group: list[_Job], error: StorageError) -> None:
        for job in group:
            job.error, job.result = error, None
        self._finish(group)

    def _finish(self, group: list[_Job]) -> None:
        _settle(group)
        if self._pending:
            self._start_group()
            return
        self._busy = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _from_thread(
        self,
        callback: Callable[..., None],
        group: list[_Job],
        done: concurrent.futures.Future[None],
    ) -> None:
        loop = self._loop
        if loop is None:  # run() sets it before any group starts
            raise RuntimeError("a commit finished with no event loop to tell")
        try:
            loop.call_soon_threadsafe(callback, group, done)
        except RuntimeError:  # that loop has closed; the commit stands on disk
            self._pending.clear()
            self._busy = False  # nothing can wait on a closed loop's future


def _identity(path: str) -> tuple[int, int]:
    found = os.stat(path)
    return found.st_dev, found.st_ino
