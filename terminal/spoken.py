"""What the soundbox has said, kept across restarts: a small SQLite file.

- Each event announced (or left unsaid, being too old, and shown on the
  idle screen instead) is a row under its ``event_id``, claimed before it
  is spoken or shown: an event heard
  on two topics, redelivered after a reconnect, kept by the broker as a
  retained message or fetched again by the catch-up is said (or shown) at
  most once, across restarts too. A crash between the claim and the sound loses that
  one announcement rather than saying it twice; the payment still shows.
- A refund's row keeps the refunded total its event carried, so that the
  next refund of the same checkout says only what it added.
- The highest ``seq`` among this terminal's verified events: where the
  catch-up (``GET /v1/events?after=``) starts.

Every write is one transaction with ``synchronous=FULL``: on disk (fsync)
before the sound plays. Only the newest ``KEEP`` rows are kept; an event
older than any of them is also older than the catch-up speaks
(``speak_within``), so it is never said again anyway, and the catch-up,
which starts after the highest ``seq``, does not fetch it to be shown again. Used from the
soundbox's one thread only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

KEEP = 2000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spoken ("
    " event_id TEXT PRIMARY KEY, checkout_id TEXT NOT NULL,"
    " refunded_total INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS spoken_checkout ON spoken (checkout_id)",
    "CREATE TABLE IF NOT EXISTS cursor ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)",
)


class RecordError(Exception):
    """The record cannot be opened or written."""


class SpokenRecord:
    def __init__(self, path: str | Path) -> None:
        # Imported here: a terminal without sound need not hold SQLite
        # (some 1.5 MB of a Pi Zero's memory).
        import sqlite3

        self._errors = sqlite3.Error
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as error:
            raise RecordError(f"cannot open {self.path}: {error}") from error

    def claim(self, event_id: str, checkout_id: str, refunded_total: int, now_ms: int) -> bool:
        """True the first time ``event_id`` is claimed, ever; False after."""
        try:
            with self._transaction():
                added = self._db.execute(
                    "INSERT OR IGNORE INTO spoken (event_id, checkout_id, refunded_total, at_ms)"
                    " VALUES (?, ?, ?, ?)",
                    (event_id, checkout_id, refunded_total, now_ms),
                ).rowcount
                if added:
                    self._db.execute(
                        "DELETE FROM spoken WHERE rowid <= (SELECT MAX(rowid) FROM spoken) - ?",
                        (KEEP,),
                    )
        except self._errors as error:
            raise RecordError(f"cannot write {self.path}: {error}") from error
        return bool(added)

    def refunded_before(self, checkout_id: str, event_id: str) -> int:
        """The highest refunded total announced for ``checkout_id`` before
        ``event_id``: 0 if none."""
        row = self._db.execute(
            "SELECT MAX(refunded_total) FROM spoken WHERE checkout_id = ? AND event_id != ?",
            (checkout_id, event_id),
        ).fetchone()
        return int(row[0] or 0)

    @property
    def seq(self) -> int:
        row = self._db.execute("SELECT seq FROM cursor WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def advance(self, seq: int) -> None:
        """The cursor moves to ``seq`` if that is further."""
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO cursor (id, seq) VALUES (1, ?)"
                    " ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                    (seq,),
                )
        except self._errors as error:
            raise RecordError(f"cannot write {self.path}: {error}") from error

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM spoken").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
