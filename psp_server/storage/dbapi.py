"""What the storage's SQL needs of a database: a connection to run
statements on, a worker that runs a function of it in one transaction, and
the few words in which the databases differ.

Statements use ``?`` placeholders (the sqlite3 module's); the PostgreSQL
connection rewrites them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from psp_server.storage.availability import Availability

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
class Dialect(abc.ABC):
    """The few words in which the databases differ, fixed per backend
    (``SqliteDialect``, ``PostgresDialect``): the storage's SQL is the same
    on each but for them."""

    name: str
    # Appended to a SELECT whose rows the transaction goes on to change.
    # With one writer at a time nothing can change them meanwhile; where
    # transactions run side by side they must be locked.
    for_update: str
    # The same, for work that any one of several processes may take: rows
    # another transaction holds are left to it.
    skip_locked: str
    # Several PSP processes may work on the database at once: it has the
    # locks and the hash that split the work (psp_server/storage/partitions.py).
    shared: bool

    @abc.abstractmethod
    def indexed_by(self, index: str) -> str:
        """Tells the planner which index to use where it would choose
        worse; nothing for a planner that takes no hints."""

    @abc.abstractmethod
    def try_transaction_lock(self, conn: Connection, key: tuple[int, int]) -> bool:
        """Takes the lock ``key`` until the transaction ends; False if
        another transaction holds it."""

    @abc.abstractmethod
    def in_partitions(self, column: str) -> str:
        """A condition: the merchant whose id ``column`` holds is in the
        partitions given. Its parameters are the number of partitions and
        the list of those given (psp_server/storage/partitions.py); only where the
        dialect is ``shared``."""
