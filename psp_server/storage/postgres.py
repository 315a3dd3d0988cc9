"""The PostgreSQL backend: the same SQL as SQLite's (sql_storage.py), run on
a pool of psycopg's async connections.

Every operation of the storage is one plain function of a DB-API
connection, and SQLite runs the very same functions; on PostgreSQL each
statement it executes is awaited on the event loop through a greenlet
(``sync_bridge``), so that both backends keep one set of rules and neither
needs a thread per connection.

Transactions run at READ COMMITTED, as in most PostgreSQL applications;
each SELECT whose rows the transaction goes on to change locks them (``FOR
UPDATE``, see ``dbapi.Dialect``), and every other change is guarded in its
WHERE clause, so that two processes paying one checkout are served one
after the other, as SQLite's single writer serves them. A transaction that
PostgreSQL aborts for a deadlock or a serialization failure is run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from psp_server.core.errors import StorageError, StorageUnavailable
from psp_server.storage.availability import Availability
from psp_server.storage.backends import Backend
from psp_server.storage.dbapi import Connection, Dialect
from psp_server.storage.partitions import Partitions
from psp_server.storage.postgres_processes import LeasedPartitions, first_line, wake_on_new_events
from psp_server.storage.schema_migrate import apply_migrations
from psp_server.storage.sql_storage import SqlStorage, active_key, new_active_key
from psp_server.storage.sync_bridge import await_only, run_sync
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.signing import SigningKey

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connections per process: transactions in flight at once. PostgreSQL's own
# limit is shared by all processes (max_connections, 100 by default).
POOL_SIZE = 8
# A transaction aborted by a deadlock or a serialization failure is run
# again this many times before the request fails.
RETRIES = 5
# The primary key of idempotency_keys, as PostgreSQL names it.
IDEMPOTENCY_KEY = "idempotency_keys_pkey"
# What a server says as it shuts down or starts: it is away, not wrong.
_SERVER_GOING = (pg_errors.AdminShutdown, pg_errors.CrashShutdown, pg_errors.CannotConnectNow)
# An application-wide advisory lock key: "s2p" "keys".
_SIGNING_KEY_LOCK = 0x73327000_6B657973


class PostgresBackend(Backend):
    name = "PostgreSQL"
    schemes = ("postgresql", "postgres")
    form = "a postgresql://user@host:port/dbname URL"
    shared = True

    def open_storage(self, clock: Clock = SYSTEM_CLOCK) -> PostgresStorage:
        return PostgresStorage(self.url, clock=clock)

    def backup(self, destination: Path) -> None:
        raise StorageError(
            "PostgreSQL is backed up with pg_dump: pg_dump --format=custom --file=psp.dump"
            " 'postgresql://...' (docs/operations.md)"
        )

    def partitions(self) -> Partitions:
        return LeasedPartitions(self.url)

    def wake_source(self, wake: asyncio.Event) -> Coroutine[Any, Any, None] | None:
        return wake_on_new_events(self.url, wake)


class PostgresDialect(Dialect):
    __slots__ = ()

    def indexed_by(self, index: str) -> str:
        return ""  # the planner takes no hints

    def try_transaction_lock(self, conn: Connection, key: tuple[int, int]) -> bool:
        (taken,) = conn.execute("SELECT pg_try_advisory_xact_lock(?, ?)", key).fetchone()
        return bool(taken)

    def in_partitions(self, column: str) -> str:
        # hashtext is the same in every process on the server.
        return f"(hashtext({column}) & 2147483647) % ? = ANY(?)"


# Transactions run side by side: a row read to be changed is locked.
POSTGRESQL = PostgresDialect(
    "postgresql", for_update=" FOR UPDATE", skip_locked=" FOR UPDATE SKIP LOCKED", shared=True
)


class PostgresStorage(SqlStorage):
    def __init__(
        self, dsn: str, *, pool_size: int = POOL_SIZE, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        migrate(dsn)
        self.dsn = dsn
        worker = PostgresWorker(dsn, pool_size)
        super().__init__(worker, load_signing_key(dsn, clock.now_ms()), POSTGRESQL, clock)


def migrate(dsn: str) -> None:
    """Brings the schema up to date; yoyo's lock makes processes that start
    together migrate once."""
    try:
        apply_migrations(_yoyo_url(dsn))
    except psycopg.Error as exc:
        raise StorageError(f"cannot migrate PostgreSQL database {_safe(dsn)}: {exc}") from exc


def load_signing_key(dsn: str, now: int) -> SigningKey:
    """The active key, made and stored (as made ``now``) on the first start.
    Blocking."""
    try:
        with _connect(dsn) as conn, conn.transaction():
            # Two processes starting at once make one key.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SIGNING_KEY_LOCK,))
            adapted = PgConnection(conn)
            return active_key(adapted) or new_active_key(adapted, now)
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot load the signing key from PostgreSQL {_safe(dsn)}: {exc}"
        ) from exc


class PostgresWorker:
    """Runs each operation in a transaction of its own on one of ``size``
    connections of psycopg's async driver, on the event loop's thread: the
    operation's statements are awaited through ``sync_bridge``."""

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._opened = 0
        self._freed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.availability = Availability()
        # Fail at start, not at the first request, when the server is away.
        try:
            _connect(dsn).close()
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL {_safe(dsn)}: {exc}") from exc

    async def run(self, operation: Callable[[Any], T]) -> T:
        return await self._transaction(operation)

    async def read(self, operation: Callable[[Any], T]) -> T:
        return await self._transaction(operation)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _transaction(self, operation: Callable[[Any], T]) -> T:
        if self._closed:
            raise StorageError("the database is closed")
        conn = await self._acquire()
        discarded = False
        try:
            for attempt in range(RETRIES + 1):
                try:
                    async with conn.transaction():
                        result: T = await run_sync(_to_the_end, operation, PgConnection(conn))
                    self.availability.back()
                    return result
                except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
                    if attempt == RETRIES:
                        self.availability.failed()
                        raise StorageError(f"transaction failed: {exc}") from exc
                    await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311 - retry jitter
                except pg_errors.UniqueViolation as exc:
                    # Another process stored an answer under the same
                    # idempotency key and committed while this one worked;
                    # this work is rolled back, and run again it replays
                    # that answer.
                    if exc.diag.constraint_name != IDEMPOTENCY_KEY or attempt == RETRIES:
                        self.availability.failed()
                        raise StorageError(f"transaction failed: {exc}") from exc
                except psycopg.OperationalError as exc:
                    # The connection is gone (a restart, a network cut), or
                    # the server is refusing work: the next transaction
                    # opens a new one; this one failed whole.
                    lost = conn.broken or conn.closed or isinstance(exc, _SERVER_GOING)
                    discarded = True
                    await self._discard(conn)
                    if not lost:
                        self.availability.failed()
                        raise StorageError(f"transaction failed: {exc}") from exc
                    # A server that went away took the idle ones with it:
                    # the next transactions open new connections rather
                    # than each find a dead one.
                    await self._discard_idle()
                    raise self._unavailable(
                        f"the database connection failed: {first_line(exc)}"
                    ) from exc
                except psycopg.Error as exc:
                    self.availability.failed()
                    raise StorageError(f"transaction failed: {exc}") from exc
            raise AssertionError("unreachable")
        finally:
            if not discarded:
                await self._release(conn)

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        freed = self._freed
        if loop is not self._loop or freed is None:
            # A later asyncio.run() (the CLI, tests): connections and their
            # waiters belong to the loop that made them.
            freed = asyncio.Condition()
            self._loop, self._idle, self._opened, self._freed = loop, [], 0, freed
        async with freed:
            while not self._idle and self._opened >= self._size:
                await freed.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=10)
        except psycopg.Error as exc:
            await self._discard(None)
            raise self._unavailable(
                f"cannot connect to PostgreSQL {_safe(self._dsn)}: {first_line(exc)}"
            ) from exc

    def _unavailable(self, reason: str) -> StorageUnavailable:
        self.availability.lost(reason)
        return StorageUnavailable(reason)

    def _condition(self) -> asyncio.Condition:
        """The pool's condition on this loop, which ``_acquire`` made."""
        if self._freed is None:
            raise RuntimeError("a connection returned to a pool that never gave one")
        return self._freed

    async def _release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        freed = self._condition()
        if self._closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            return
        async with freed:
            self._idle.append(conn)
            freed.notify()

    async def _discard_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)

    async def _discard(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        freed = self._condition()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
        async with freed:
            self._opened -= 1
            freed.notify()


def _to_the_end(operation: Callable[[Any], T], conn: PgConnection) -> T:
    """``operation``, then the statements it left waiting, before COMMIT."""
    result = operation(conn)
    conn.flush()
    return result


class PgConnection:
    """A psycopg connection that takes the storage's ``?`` placeholders.
    An async connection's statements are awaited through ``sync_bridge``,
    so that the storage's operations run on it unchanged.

    On an async connection a statement waits until something reads its
    outcome (or any later statement's, or the operation ends), and those
    waiting then go to the server together in one pipeline: one round trip
    for a payment's inserts instead of one each, where each round trip
    costs a wait on the loop and psycopg's Python on both ends. Only the
    order of the statements is kept; an error surfaces at the next read
    or at the end, and fails the operation as it would have at once (no
    operation catches a database error to go on)."""

    __slots__ = ("_conn", "_waiting")

    def __init__(self, conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self._waiting: list[_Waiting] = []

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        conn = self._conn
        if isinstance(conn, psycopg.AsyncConnection):
            statement = _Waiting(self, _placeholders(sql), parameters or None)
            self._waiting.append(statement)
            return statement
        return conn.execute(_placeholders(sql), parameters or None)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        conn = self._conn
        if isinstance(conn, psycopg.AsyncConnection):
            self.flush()
            return await_only(_executed_many(conn, _placeholders(sql), list(parameters)))
        cursor = conn.cursor()
        cursor.executemany(_placeholders(sql), parameters)
        return cursor

    def flush(self) -> None:
        """Sends the waiting statements and reads their outcomes."""
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        conn = self._conn
        if not isinstance(conn, psycopg.AsyncConnection):  # execute runs at once on the others
            raise RuntimeError("statements wait only on an async connection")
        await_only(_pipelined(conn, waiting))


class _Result:
    """A statement's outcome, read in full while on the loop."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self.rows = rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class _Waiting:
    """A statement not sent yet: reading its outcome sends it, with every
    statement waiting before it."""

    __slots__ = ("_owner", "parameters", "result", "sql")

    def __init__(self, owner: PgConnection, sql: str, parameters: Any) -> None:
        self._owner = owner
        self.sql = sql
        self.parameters = parameters
        self.result: _Result | None = None

    def _outcome(self) -> _Result:
        if self.result is None:
            self._owner.flush()
        if self.result is None:  # an earlier statement failed in the pipeline
            raise StorageError("the statement was not run")
        return self.result

    @property
    def rowcount(self) -> int:
        return self._outcome().rowcount

    def fetchone(self) -> Any:
        return self._outcome().fetchone()

    def fetchall(self) -> list[Any]:
        return self._outcome().rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._outcome().rows)


async def _executed(conn: psycopg.AsyncConnection[Any], sql: str, parameters: Any) -> _Result:
    cursor = await conn.execute(sql, parameters)
    rows = await cursor.fetchall() if cursor.description is not None else []
    return _Result(cursor.rowcount, rows)


async def _pipelined(conn: psycopg.AsyncConnection[Any], statements: list[_Waiting]) -> None:
    if len(statements) == 1:  # a pipeline's own sync would be a cost for nothing
        only = statements[0]
        only.result = await _executed(conn, only.sql, only.parameters)
        return
    cursors = []
    async with conn.pipeline():
        for statement in statements:
            cursor = conn.cursor()
            await cursor.execute(statement.sql, statement.parameters)
            cursors.append(cursor)
    for statement, cursor in zip(statements, cursors, strict=True):
        rows = await cursor.fetchall() if cursor.description is not None else []
        statement.result = _Result(cursor.rowcount, rows)


async def _executed_many(
    conn: psycopg.AsyncConnection[Any], sql: str, parameters: list[Any]
) -> _Result:
    cursor = conn.cursor()
    await cursor.executemany(sql, parameters)
    return _Result(cursor.rowcount, [])


_translated: dict[str, str] = {}


def _placeholders(sql: str) -> str:
    """``?`` -> ``%s``. The storage's SQL holds no ``?`` or ``%`` in its
    literals; a literal ``%`` is doubled all the same."""
    pg = _translated.get(sql)
    if pg is None:
        pg = _translated[sql] = sql.replace("%", "%%").replace("?", "%s")
    return pg


def _connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, connect_timeout=10)


def _yoyo_url(dsn: str) -> str:
    rest = dsn.split("://", 1)[1]
    return f"postgresql+psycopg://{rest}"


def _safe(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    scheme, _, rest = dsn.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return dsn
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
