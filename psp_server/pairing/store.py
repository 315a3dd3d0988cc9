"""Pairings and paired terminals in the PSP's database (schema 0009).

Every operation is one transaction through the storage's worker, so that a
refusal raised inside one leaves nothing changed. Two approvals of one
code, or of two codes for one terminal id, are decided by the database:
the pending status is changed under a guard in its WHERE clause, and the
``paired_terminals`` key takes one row per terminal id.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from psp_server.core.errors import StorageError
from psp_server.storage import Storage
from psp_server.storage.dbapi import Connection, Dialect, Worker

# Pending pairings that were never approved are purged this long after
# they expired; an approved one stays, as the record of its terminal.
PURGE_AFTER_MS = 24 * 3600 * 1000
PURGE_BATCH = 100


class PairingRefused(Exception):
    """What a merchant or a terminal is told; nothing was changed."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def unknown_code() -> PairingRefused:
    return PairingRefused(
        "unknown_code",
        "no terminal is waiting with this code; check it on the terminal's screen",
        404,
    )


def code_expired() -> PairingRefused:
    return PairingRefused(
        "code_expired",
        "this code has expired; the terminal shows a new one by itself",
        410,
    )


def code_used() -> PairingRefused:
    return PairingRefused("code_used", "this code has been used already", 409)


def terminal_taken(terminal_id: str) -> PairingRefused:
    return PairingRefused(
        "terminal_taken",
        f"a terminal {terminal_id} is paired already; unpair it first or choose another id",
        409,
    )


@dataclass(frozen=True, slots=True)
class Pending:
    expires_at: int


@dataclass(frozen=True, slots=True)
class Collected:
    """The approved pairing's account, handed over now and never again."""

    merchant_id: str
    terminal_id: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Paired:
    merchant_id: str
    terminal_id: str


@dataclass(frozen=True, slots=True)
class Revoked:
    pass


Polled = Pending | Collected | Paired | Revoked


@dataclass(frozen=True, slots=True)
class PairedTerminal:
    terminal_id: str
    paired_at: int
    collected: bool  # whether the terminal has its settings yet


class PairingStore:
    def __init__(self, worker: Worker, dialect: Dialect) -> None:
        self._worker = worker
        self._dialect = dialect

    @classmethod
    def of(cls, storage: Storage) -> PairingStore:
        from psp_server.storage.sql_storage import SqlStorage

        if not isinstance(storage, SqlStorage):
            raise StorageError("pairing needs an SQL storage")
        return cls(storage.worker, storage.dialect)

    async def start(
        self, pairing_id: str, code_hash: str, secret_hash: str, *, now: int, expires_at: int
    ) -> bool:
        """Stores a new pending pairing; False if its code's hash is taken
        (the caller draws another code). Purges old unapproved ones."""

        def op(conn: Connection) -> bool:
            conn.execute(
                "DELETE FROM pairings WHERE id IN (SELECT id FROM pairings"
                " WHERE status = 'pending' AND expires_at < ? ORDER BY expires_at LIMIT ?)",
                (now - PURGE_AFTER_MS, PURGE_BATCH),
            )
            # An approval never collected: its password goes once its time is up.
            conn.execute(
                "UPDATE pairings SET mqtt_password = NULL"
                " WHERE status = 'approved' AND expires_at < ? AND mqtt_password IS NOT NULL",
                (now,),
            )
            inserted = conn.execute(
                "INSERT INTO pairings (id, code_hash, device_secret_hash, status, created_at,"
                " expires_at) VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                (pairing_id, code_hash, secret_hash, now, expires_at),
            ).rowcount
            return inserted == 1

        return await self._worker.run(op)

    async def claim(self, code_hash: str, merchant_id: str, terminal_id: str, *, now: int) -> str:
        """Reserves the terminal id for the pending pairing with this code
        (status ``approving``) and returns the pairing's id; the broker
        account is made next, then ``complete`` or ``release``."""

        def op(conn: Connection) -> str:
            row = conn.execute(
                "SELECT id, status, expires_at FROM pairings"
                f" WHERE code_hash = ?{self._dialect.for_update}",
                (code_hash,),
            ).fetchone()
            if row is None:
                raise unknown_code()
            pairing_id, status, expires_at = row
            if status != "pending":
                raise code_used()
            if expires_at <= now:
                raise code_expired()
            if (
                conn.execute("SELECT 1 FROM merchants WHERE id = ?", (merchant_id,)).fetchone()
                is None
            ):
                raise PairingRefused("unknown_merchant", f"there is no merchant {merchant_id}", 404)
            taken = conn.execute(
                "INSERT INTO paired_terminals (merchant_id, terminal_id, pairing_id, paired_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (merchant_id, terminal_id, pairing_id, now),
            ).rowcount
            if taken != 1:
                raise terminal_taken(terminal_id)
            conn.execute(
                "UPDATE pairings SET status = 'approving', merchant_id = ?, terminal_id = ?,"
                " approved_at = ? WHERE id = ? AND status = 'pending'",
                (merchant_id, terminal_id, now, pairing_id),
            )
            return str(pairing_id)

        return await self._worker.run(op)

    async def release(self, pairing_id: str) -> None:
        """Undoes ``claim`` when the account could not be made."""

        def op(conn: Connection) -> None:
            conn.execute("DELETE FROM paired_terminals WHERE pairing_id = ?", (pairing_id,))
            conn.execute(
                "UPDATE pairings SET status = 'pending', merchant_id = NULL, terminal_id = NULL,"
                " approved_at = NULL WHERE id = ? AND status = 'approving'",
                (pairing_id,),
            )

        await self._worker.run(op)

    async def complete(self, pairing_id: str, password: str, *, collect_by: int) -> bool:
        """The account exists: its password waits for the device until
        ``collect_by``. False when the pairing is no longer being approved
        (unpaired meanwhile)."""

        def op(conn: Connection) -> bool:
            changed = conn.execute(
                "UPDATE pairings SET status = 'approved', mqtt_password = ?, expires_at = ?"
                " WHERE id = ? AND status = 'approving'",
                (password, collect_by, pairing_id),
            ).rowcount
            return bool(changed)

        return await self._worker.run(op)

    async def poll(self, pairing_id: str, secret_hash: str, *, now: int) -> Polled:
        """Where the pairing stands, for the device that started it. An
        approved pairing's account is handed over here, once: the same
        transaction marks it delivered and forgets the password."""
        found = await self._worker.read(lambda conn: _status(conn, pairing_id, secret_hash, now))
        if not isinstance(found, _Collectable):
            return found
        dialect = self._dialect

        def op(conn: Connection) -> Polled:
            again = _status(conn, pairing_id, secret_hash, now, dialect)
            if not isinstance(again, _Collectable):
                return again  # another poll took it meanwhile
            conn.execute(
                "UPDATE pairings SET status = 'delivered', delivered_at = ?,"
                " mqtt_password = NULL WHERE id = ? AND status = 'approved'",
                (now, pairing_id),
            )
            return Collected(again.merchant_id, again.terminal_id, again.password)

        return await self._worker.run(op)

    async def paired_with_secret(self, pairing_id: str, secret_hash: str) -> Paired | None:
        """The terminal whose device secret hashes to ``secret_hash``, while
        it is paired (its settings delivered, not unpaired); None otherwise."""

        def op(conn: Connection) -> Paired | None:
            row = conn.execute(
                "SELECT device_secret_hash, status, merchant_id, terminal_id"
                " FROM pairings WHERE id = ?",
                (pairing_id,),
            ).fetchone()
            if row is None:
                return None
            stored, status, merchant_id, terminal_id = row
            if not hmac.compare_digest(str(stored), secret_hash) or status != "delivered":
                return None
            return Paired(merchant_id, terminal_id)

        return await self._worker.read(op)

    async def terminals(self, merchant_id: str) -> list[PairedTerminal]:
        def op(conn: Connection) -> list[PairedTerminal]:
            rows = conn.execute(
                "SELECT t.terminal_id, t.paired_at, p.status FROM paired_terminals t"
                " JOIN pairings p ON p.id = t.pairing_id"
                " WHERE t.merchant_id = ? ORDER BY t.terminal_id",
                (merchant_id,),
            ).fetchall()
            return [PairedTerminal(tid, at, status == "delivered") for tid, at, status in rows]

        return await self._worker.read(op)

    async def is_paired(self, merchant_id: str, terminal_id: str) -> bool:
        def op(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM paired_terminals WHERE merchant_id = ? AND terminal_id = ?",
                (merchant_id, terminal_id),
            ).fetchone()
            return row is not None

        return await self._worker.read(op)

    async def unpair(self, merchant_id: str, terminal_id: str, *, now: int) -> bool:
        """Forgets the paired terminal and marks its pairing revoked; False
        if the merchant has no paired terminal with this id."""

        def op(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT pairing_id FROM paired_terminals"
                f" WHERE merchant_id = ? AND terminal_id = ?{self._dialect.for_update}",
                (merchant_id, terminal_id),
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "DELETE FROM paired_terminals WHERE merchant_id = ? AND terminal_id = ?",
                (merchant_id, terminal_id),
            )
            conn.execute(
                "UPDATE pairings SET status = 'revoked', revoked_at = ?, mqtt_password = NULL"
                " WHERE id = ?",
                (now, row[0]),
            )
            return True

        return await self._worker.run(op)


@dataclass(frozen=True, slots=True)
class _Collectable:
    merchant_id: str
    terminal_id: str
    password: str = field(repr=False)


_STATUS = (
    "SELECT device_secret_hash, status, expires_at, merchant_id, terminal_id, mqtt_password"
    " FROM pairings WHERE id = ?"
)


def _status(
    conn: Connection,
    pairing_id: str,
    secret_hash: str,
    now: int,
    dialect: Dialect | None = None,
) -> Polled | _Collectable:
    """The pairing as its device may see it; with ``dialect``, its row locked
    for the transaction that hands the account over."""
    if dialect is None:
        row = conn.execute(_STATUS, (pairing_id,)).fetchone()
    else:
        row = conn.execute(f"{_STATUS}{dialect.for_update}", (pairing_id,)).fetchone()
    if row is None:
        raise PairingRefused("not_found", "no such pairing", 404)
    stored, status, expires_at, merchant_id, terminal_id, password = row
    if not hmac.compare_digest(str(stored), secret_hash):
        raise PairingRefused(
            "wrong_device_secret",
            "this pairing was started by another device; nothing was handed over",
            403,
        )
    if status == "revoked":
        return Revoked()
    if status == "delivered":
        return Paired(merchant_id, terminal_id)
    if expires_at <= now or (status == "approved" and password is None):
        raise PairingRefused("pairing_expired", "this pairing has expired; start a new one", 410)
    if status == "approved":
        return _Collectable(merchant_id, terminal_id, password)
    return Pending(expires_at)
