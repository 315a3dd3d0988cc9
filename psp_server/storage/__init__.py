"""Storage backends, chosen by the form of ``--db``."""

from __future__ import annotations

from ..errors import StorageError
from .base import Storage


def open_storage(db: str) -> Storage:
    """Opens (and migrates) the database that ``db`` names: a SQLite path,
    ``sqlite:///path``, or ``postgresql://user@host:port/dbname``. Blocking:
    call it off the event loop."""
    if db.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStorage

        return PostgresStorage(db)
    path = db.removeprefix("sqlite:///") if db.startswith("sqlite:///") else db
    if "://" in path:
        raise StorageError(f"{db!r}: --db takes a SQLite file path or a postgresql:// URL")
    from .sqlite import SqliteStorage

    return SqliteStorage(path)


__all__ = ["Storage", "StorageError", "open_storage"]
