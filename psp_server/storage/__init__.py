"""Storage backends, chosen once by the form of ``--db`` (backends.py)."""

from __future__ import annotations

from ..errors import StorageError
from .backends import Backend, BadDatabaseURL, choose
from .base import Storage


def open_storage(db: str) -> Storage:
    """Opens (and migrates) the database that ``db`` names (``choose``).
    Blocking: call it off the event loop."""
    return choose(db).open_storage()


__all__ = ["Backend", "BadDatabaseURL", "Storage", "StorageError", "choose", "open_storage"]
