"""The databases the PSP can keep its state in, each a backend chosen once
by the scheme of the configured URL (``choose``), in the manner of Mopidy's
backends: from then on only the backend knows which database it is.

A backend opens the storage (its connection or pool, and the dialect of
its SQL), leases the merchants' partitions among the processes that share
the database, and says how this process hears that another one wrote
events. No module outside ``storage/`` looks at the URL or names a
database.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from psp_server.core.errors import StorageError
from psp_server.storage.partitions import Partitions
from scan2pay_common.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from psp_server.storage.sql_storage import SqlStorage


class BadDatabaseURL(StorageError):
    """The configured URL names no database this PSP knows, or names one in
    a form its backend does not take; the message says what would do."""


class Backend(abc.ABC):
    # As messages name the database.
    name: ClassVar[str]
    # The URL schemes that name it.
    schemes: ClassVar[tuple[str, ...]]
    # True for the one backend that takes a bare file path.
    takes_file_paths: ClassVar[bool] = False
    # How help texts show its URL, like "a postgresql://user@host/db URL".
    form: ClassVar[str]
    # Several server processes may serve one database at once.
    shared: ClassVar[bool]
    # Where not ``shared``: why, for the message refusing several processes.
    why_one_process: ClassVar[str] = ""

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def open_storage(self, clock: Clock = SYSTEM_CLOCK) -> SqlStorage:
        """Opens (and migrates) the database; the storage dates what it
        writes and times its caches by ``clock``. Blocking: call it off the
        event loop."""

    @abc.abstractmethod
    def partitions(self) -> Partitions:
        """This process's lease on the merchants' partitions, or every
        merchant where one process serves them all."""

    @abc.abstractmethod
    def wake_source(self, wake: asyncio.Event) -> Coroutine[Any, Any, None] | None:
        """A task that sets ``wake`` whenever another process committed
        events, for as long as it runs; None where the database cannot
        tell, and the in-process wake-up and the relay's poll are all
        there is."""

    def backup(self, destination: Path) -> None:
        """A consistent copy of the database, taken while servers run, in
        the new file ``destination``. Blocking. Where the database has its
        own tool for that, the error names it."""
        raise StorageError(f"{self.name} is backed up with its own tools (docs/operations.md)")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"  # the URL may hold a password


@functools.cache
def _registry() -> dict[str, type[Backend]]:
    """Every backend by its schemes. Filled on first use, since the
    backends' modules import this one."""
    from psp_server.storage.postgres import PostgresBackend
    from psp_server.storage.sqlite import SqliteBackend

    return {scheme: kind for kind in (SqliteBackend, PostgresBackend) for scheme in kind.schemes}


def kinds() -> list[type[Backend]]:
    """Every backend, once each, in the order they are offered."""
    return list(dict.fromkeys(_registry().values()))


def forms() -> str:
    """What a database URL may be, for help texts and config errors."""
    return ", or ".join(kind.form for kind in kinds())


def shared_names() -> str:
    """The databases that several processes may share, named."""
    return " or ".join(kind.name for kind in kinds() if kind.shared)


def shared_urls() -> str:
    """The same, each with the URL that names it."""
    return " or ".join(
        f"{kind.name} (a {kind.schemes[0]}:// --db)" for kind in kinds() if kind.shared
    )


def choose(url: str) -> Backend:
    """The backend of the database ``url`` names, by its scheme; a path
    without one is a file. Nothing is opened yet."""
    scheme, separator, _ = url.partition("://")
    registry = _registry()
    if not separator:
        kind = next(kind for kind in kinds() if kind.takes_file_paths)
    elif scheme in registry:
        kind = registry[scheme]
    else:
        known = ", ".join(f"{name}://" for name in registry)
        raise BadDatabaseURL(f"no database backend for {scheme}:// (known: {known})")
    return kind(url)
