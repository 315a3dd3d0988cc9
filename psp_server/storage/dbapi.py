"""What the storage's SQL needs of a database: a connection to run
statements on, a worker that runs a function of it in one transaction, and
the few words in which SQLite and PostgreSQL differ.

Statements use ``?`` placeholders (the sqlite3 module's); the PostgreSQL
connection rewrites them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .availability import Availability

T = TypeVar("T")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


class Worker(Protocol):
    availability: Availability

    async def run(self, operation: Callable[[Connection], T]) -> T:
        """Runs ``operation`` in a read-write transaction; returns its result
        once that transaction is committed (on disk)."""

    async def read(self, operation: Callable[[Connection], T]) -> T:
        """Runs a read-only ``operation`` on the newest committed state."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    # Appended to a SELECT whose rows the transaction goes on to change.
    # SQLite has one writer at a time, so nothing can change them meanwhile;
    # PostgreSQL runs transactions side by side and must lock them.
    for_update: str
    # The same, for work that any one of several processes may take: rows
    # another transaction holds are left to it.
    skip_locked: str
    # Several PSP processes may work on the database at once: it has the
    # advisory locks and the hash that split the work (partitions.py).
    shared: bool

    def indexed_by(self, index: str) -> str:
        """Tells SQLite's planner which index to use where it would choose
        worse; PostgreSQL's planner takes no hints."""
        return f" INDEXED BY {index}" if self.name == "sqlite" else ""


SQLITE = Dialect("sqlite", for_update="", skip_locked="", shared=False)
POSTGRESQL = Dialect(
    "postgresql", for_update=" FOR UPDATE", skip_locked=" FOR UPDATE SKIP LOCKED", shared=True
)
