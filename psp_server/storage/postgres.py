"""The PostgreSQL backend: the same SQL as SQLite's (sql_storage.py), run on
a pool of connections, each transaction on a thread of its own.

Why threads and psycopg's blocking API rather than an async driver: every
operation of the storage is one function of a DB-API connection, and
SQLite runs the very same functions; a thread per connection lets them run
unchanged, so that both backends keep one set of rules. psycopg releases
the GIL while it waits for the server.

Transactions run at READ COMMITTED, as in most PostgreSQL applications;
each SELECT whose rows the transaction goes on to change locks them (``FOR
UPDATE``, see ``dbapi.Dialect``), and every other change is guarded in its
WHERE clause, so that two processes paying one checkout are served one
after the other, as SQLite's single writer serves them. A transaction that
PostgreSQL aborts for a deadlock or a serialization failure is run again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import now_ms

from ..errors import StorageError
from .dbapi import POSTGRESQL
from .schema_migrate import apply_migrations
from .sql_storage import SqlStorage, active_key, new_active_key

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connections (and threads) per process: enough to keep PostgreSQL busy
# while the event loop serves HTTP, and few enough that the threads do not
# queue for the GIL (8 measured slower than 4 on one merchant's payments,
# and no faster on 16 merchants'); PostgreSQL's own limit is shared by all
# processes (max_connections, 100 by default).
POOL_SIZE = 4
# A transaction aborted by a deadlock or a serialization failure is run
# again this many times before the request fails.
RETRIES = 5
# The primary key of idempotency_keys, as PostgreSQL names it.
IDEMPOTENCY_KEY = "idempotency_keys_pkey"
# An application-wide advisory lock key: "s2p" "keys".
_SIGNING_KEY_LOCK = 0x73327000_6B657973


class PostgresStorage(SqlStorage):
    def __init__(self, dsn: str, *, pool_size: int = POOL_SIZE) -> None:
        migrate(dsn)
        self.dsn = dsn
        super().__init__(PostgresWorker(dsn, pool_size), load_signing_key(dsn), POSTGRESQL)


def migrate(dsn: str) -> None:
    """Brings the schema up to date; yoyo's lock makes processes that start
    together migrate once."""
    try:
        apply_migrations(_yoyo_url(dsn))
    except psycopg.Error as exc:
        raise StorageError(f"cannot migrate PostgreSQL database {_safe(dsn)}: {exc}") from exc


def load_signing_key(dsn: str) -> SigningKey:
    """The active key, made and stored on the first start. Blocking."""
    try:
        with _connect(dsn) as conn, conn.transaction():
            # Two processes starting at once make one key.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SIGNING_KEY_LOCK,))
            adapted = PgConnection(conn)
            return active_key(adapted) or new_active_key(adapted, now_ms())
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot load the signing key from PostgreSQL {_safe(dsn)}: {exc}"
        ) from exc


class PostgresWorker:
    """Runs each operation in a transaction of its own, on one of
    ``size`` threads, each with its own connection."""

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=size, thread_name_prefix="postgres"
        )
        # Fail at start, not at the first request, when the server is away.
        self._executor.submit(self._connection).result()

    async def run(self, operation: Callable[[Any], T]) -> T:
        return await self._submit(operation)

    async def read(self, operation: Callable[[Any], T]) -> T:
        return await self._submit(operation)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def _submit(self, operation: Callable[[Any], T]) -> T:
        if self._closed:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, operation)

    def _transaction(self, operation: Callable[[Any], T]) -> T:
        for attempt in range(RETRIES + 1):
            conn = self._connection()
            try:
                with conn.transaction():
                    return operation(PgConnection(conn))
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
                if attempt == RETRIES:
                    raise StorageError(f"transaction failed: {exc}") from exc
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
            except pg_errors.UniqueViolation as exc:
                # Another process stored an answer under the same idempotency
                # key and committed while this one worked; this work is
                # rolled back, and run again it replays that answer.
                if exc.diag.constraint_name != IDEMPOTENCY_KEY or attempt == RETRIES:
                    raise StorageError(f"transaction failed: {exc}") from exc
            except psycopg.OperationalError as exc:
                # The connection is gone (a restart, a network cut): the next
                # transaction opens a new one; this one failed as a whole.
                self._forget(conn)
                raise StorageError(f"the database connection failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"transaction failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = _connect(self._dsn)
            except psycopg.Error as exc:
                raise StorageError(
                    f"cannot connect to PostgreSQL {_safe(self._dsn)}: {exc}"
                ) from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()


class PgConnection:
    """A psycopg connection that takes the storage's ``?`` placeholders."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        return self._conn.execute(_placeholders(sql), parameters or None)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        cursor = self._conn.cursor()
        cursor.executemany(_placeholders(sql), parameters)
        return cursor


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
