"""The SQLite backend: WAL, durable commits, one writer connection
(sqlite_worker.py), and so one process serving every merchant."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from psp_server.core.errors import StorageError
from psp_server.storage.backends import Backend, BadDatabaseURL
from psp_server.storage.dbapi import Connection, Dialect
from psp_server.storage.partitions import AllPartitions, Partitions
from psp_server.storage.schema_migrate import apply_migrations
from psp_server.storage.sql_storage import SqlStorage, active_key, new_active_key
from psp_server.storage.sqlite_worker import SqliteWorker, connect
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.signing import SigningKey

log = logging.getLogger(__name__)

# The file holds the PSP's signing key and the webhooks' secrets.
PRIVATE = 0o600


URL_PREFIX = "sqlite:///"


class SqliteBackend(Backend):
    name = "SQLite"
    schemes = ("sqlite",)
    takes_file_paths = True
    form = "a SQLite file path, like /var/lib/scan2pay/psp.db"
    shared = False
    why_one_process = "SQLite has one writer"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = url.removeprefix(URL_PREFIX)
        if "://" in path:
            raise BadDatabaseURL(f"a SQLite database is a file path or {URL_PREFIX}path")
        self.path = path

    def open_storage(self, clock: Clock = SYSTEM_CLOCK) -> SqliteStorage:
        return SqliteStorage(self.path, clock)

    def partitions(self) -> Partitions:
        return AllPartitions()

    def backup(self, destination: Path) -> None:
        """SQLite's online backup API: the pages as of one moment, read
        through a read-only connection while the server goes on writing
        (in WAL mode a reader holds up no writer). Written to a file beside
        ``destination`` and renamed at the end, so that a copy that failed
        half-way is never taken for a backup."""
        if destination.exists():
            raise StorageError(f"{destination} exists; a backup is written to a new file")
        if not Path(self.path).is_file():
            raise StorageError(f"no database file at {self.path}")
        partial = destination.with_name(destination.name + ".partial")
        try:
            source = sqlite3.connect(Path(self.path).absolute().as_uri() + "?mode=ro", uri=True)
            try:
                target = sqlite3.connect(partial)
                try:
                    os.chmod(partial, PRIVATE)  # it holds what the database holds
                    source.backup(target)
                finally:
                    target.close()
            finally:
                source.close()
            partial.rename(destination)
        except (OSError, sqlite3.Error) as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"cannot back up {self.path} to {destination}: {exc}") from exc

    def wake_source(self, wake: asyncio.Event) -> Coroutine[Any, Any, None] | None:
        # One process writes: it sets the wake-up itself. The CLI's writes
        # are found by the relay's poll.
        return None


class SqliteDialect(Dialect):
    __slots__ = ()

    def indexed_by(self, index: str) -> str:
        return f" INDEXED BY {index}"

    def try_transaction_lock(self, conn: Connection, key: tuple[int, int]) -> bool:
        return True  # a write transaction holds the database's one write lock already

    def in_partitions(self, column: str) -> str:
        raise StorageError("merchant partitions need a database that several processes share")


# One writer at a time: nothing changes the rows a transaction read meanwhile.
SQLITE = SqliteDialect("sqlite", for_update="", skip_locked="", shared=False)


class SqliteStorage(SqlStorage):
    def __init__(self, path: str, clock: Clock = SYSTEM_CLOCK) -> None:
        _check_path(path)
        _create_private(path)
        migrate(path)
        _warn_if_readable(path)
        self.path = path
        super().__init__(SqliteWorker(path), load_signing_key(path, clock.now_ms()), SQLITE, clock)


def migrate(path: str) -> None:
    """Brings the schema at ``path`` up to date (yoyo keeps the applied list)."""
    try:
        apply_migrations(f"{URL_PREFIX}{path}")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate SQLite database {path!r}: {exc}") from exc


def load_signing_key(path: str, now: int) -> SigningKey:
    """The active key, made and stored (as made ``now``) on the first start.
    Blocking."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")  # two processes starting at once make one key
        key = active_key(conn) or new_active_key(conn, now)
        conn.execute("COMMIT")
        return key
    except sqlite3.Error as exc:
        raise StorageError(f"cannot load the signing key from {path!r}: {exc}") from exc
    finally:
        conn.close()


def _check_path(path: str) -> None:
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise StorageError(f"cannot open SQLite database {path!r}: folder {parent} does not exist")


def _create_private(path: str) -> None:
    """Makes a new database file readable by its owner only. SQLite gives
    the -wal and -shm files it makes beside it the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create SQLite database {path!r}: {exc.strerror}") from exc


def _warn_if_readable(path: str) -> None:
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode
        except OSError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "%s is open to other users (mode %s) and holds the signing key and webhook "
                "secrets: chmod 600 it",
                name,
                stat.filemode(mode),
            )
