"""The PSP's database as a test reads it behind the server's back, whichever
backend ``--db`` names: a SQLite file or a postgresql:// URL."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from psp_server.storage.postgres import PgConnection

# What a constraint the schema enforces raises, on either backend.
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)


def is_postgresql(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


class _Postgres(PgConnection):
    """PgConnection (``?`` placeholders) with the connection's commit."""

    __slots__ = ()

    def commit(self) -> None:
        self._conn.commit()


@contextlib.contextmanager
def connect(db: str) -> Iterator[Any]:
    """A connection taking ``?`` placeholders; what it did is committed when
    the block ends without an error, and the connection closed."""
    if is_postgresql(db):
        with psycopg.connect(db) as pg:
            yield _Postgres(pg)
        return
    conn = sqlite3.connect(db)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def sqlite_at_migration(path: Path, last: str) -> None:
    """A SQLite database at ``path`` migrated up to and including the
    migration ``last`` only: a database as an older release left it."""
    at_migration(str(path), last)


def at_migration(db: str, last: str) -> None:
    """``db`` (a SQLite file or an empty PostgreSQL database) migrated up to
    and including the migration ``last`` only."""
    from yoyo import get_backend, read_migrations

    folder = resources.files("psp_server.storage") / "migrations"
    if is_postgresql(db):
        url = "postgresql+psycopg://" + db.split("://", 1)[1]
    else:
        url = f"sqlite:///{db}"
    backend = get_backend(url)
    wanted = read_migrations(str(folder)).filter(lambda m: m.id <= last)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(wanted))
    backend.connection.close()


_sqlite_template: Path | None = None


def migrated_sqlite(path: str | Path) -> str:
    """Puts a SQLite database with the whole schema at ``path``: a copy of
    one migrated once per test process. Migrating a new file costs 0.2-0.4 s
    of durable commits, a copy about a millisecond, and a thousand tests
    start a PSP on a new file. The copy holds no signing key: the PSP makes
    its own on first open, as on a new database."""
    global _sqlite_template
    if _sqlite_template is None:
        from psp_server.storage.sqlite import migrate

        folder = Path(tempfile.mkdtemp(prefix="scan2pay-sqlite-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = folder / "psp.db"
        migrate(str(template))
        _sqlite_template = template
    # Private, as the PSP makes its own (it holds the signing key).
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    shutil.copyfile(_sqlite_template, path)
    return str(path)
