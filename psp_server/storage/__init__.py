"""Storage backends, chosen once by the form of ``--db`` (backends.py)."""

from __future__ import annotations

from psp_server.core.errors import StorageError
from psp_server.storage.backends import Backend, BadDatabaseURL, choose
from psp_server.storage.base import Storage
from scan2pay_common.clock import SYSTEM_CLOCK, Clock


def open_storage(db: str, clock: Clock = SYSTEM_CLOCK) -> Storage:
    """Opens (and migrates) the database that ``db`` names (``choose``).
    Blocking: call it off the event loop."""
    return choose(db).open_storage(clock)


__all__ = ["Backend", "BadDatabaseURL", "Storage", "StorageError", "choose", "open_storage"]
