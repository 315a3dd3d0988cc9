"""Static till codes in the PSP's database (schema 0011), and the checkouts
customers make at them.

Each operation is one transaction through the storage's worker. The rules
are the core's (``psp_server.core.static_codes``): a checkout from a typed
amount is decided on the code and the till's pending checkout as read,
locked, in the transaction that writes it, so that a revocation committed
first is seen and refuses it.
"""

from __future__ import annotations

from typing import Any

from psp_server.core.errors import Refusal, Refused, StorageError
from psp_server.core.machine import creation_events
from psp_server.core.records import Checkout, Merchant
from psp_server.core.static_codes import (
    OpenAmount,
    StaticCode,
    check_typed_amount,
    new_static_checkout,
)
from psp_server.storage.base import Storage
from psp_server.storage.dbapi import Connection, Dialect, Worker
from psp_server.storage.sql_storage import (
    _MERCHANT_COLUMNS,
    _MERCHANT_COLUMNS_OF_M,
    _MERCHANT_WIDTH,
    _merchant,
    insert_checkout,
    till_checkout,
    write_event,
)
from scan2pay_common.signing import SigningKey

_COLUMNS = (
    "id, merchant_id, terminal_id, label, code, url, open_currency, open_min, open_max,"
    " created_at, revoked_at"
)
_COLUMNS_OF_S = ", ".join("s." + c.strip() for c in _COLUMNS.split(","))
# Newest first, and at most this many in a list: a till has a handful.
LIST_LIMIT = 500


def _static_code(row: Any) -> StaticCode:
    (
        id_,
        merchant_id,
        terminal_id,
        label,
        code,
        url,
        open_currency,
        open_min,
        open_max,
        created_at,
        revoked_at,
    ) = row
    open_amount = (
        None if open_currency is None else OpenAmount(open_currency, int(open_min), int(open_max))
    )
    return StaticCode(
        id=id_,
        merchant_id=merchant_id,
        terminal_id=terminal_id,
        label=label,
        code=code,
        url=url,
        open_amount=open_amount,
        created_at=int(created_at),
        revoked_at=None if revoked_at is None else int(revoked_at),
    )


class StaticCodeStore:
    def __init__(self, worker: Worker, dialect: Dialect, signing_key: SigningKey) -> None:
        self._worker = worker
        self._dialect = dialect
        self._signing_key = signing_key

    @classmethod
    def of(cls, storage: Storage) -> StaticCodeStore:
        from psp_server.storage.sql_storage import SqlStorage

        if not isinstance(storage, SqlStorage):
            raise StorageError("static till codes need an SQL storage")
        return cls(storage.worker, storage.dialect, storage.signing_key)

    async def create(self, code: StaticCode) -> None:
        def op(conn: Connection) -> None:
            amounts = code.open_amount
            conn.execute(
                f"INSERT INTO static_codes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    code.id,
                    code.merchant_id,
                    code.terminal_id,
                    code.label,
                    code.code,
                    code.url,
                    None if amounts is None else amounts.currency,
                    None if amounts is None else amounts.minimum,
                    None if amounts is None else amounts.maximum,
                    code.created_at,
                    code.revoked_at,
                ),
            )

        await self._worker.run(op)

    async def list(self, merchant_id: str, terminal_id: str | None = None) -> list[StaticCode]:
        """The merchant's codes, of one till or of all, newest first."""

        def op(conn: Connection) -> list[StaticCode]:
            if terminal_id is None:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM static_codes WHERE merchant_id = ?"
                    " ORDER BY created_at DESC, id DESC LIMIT ?",
                    (merchant_id, LIST_LIMIT),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM static_codes WHERE merchant_id = ? AND terminal_id = ?"
                    " ORDER BY created_at DESC, id DESC LIMIT ?",
                    (merchant_id, terminal_id, LIST_LIMIT),
                ).fetchall()
            return [_static_code(row) for row in rows]

        return await self._worker.read(op)

    async def get(self, merchant_id: str, code_id: str) -> StaticCode | None:
        def op(conn: Connection) -> StaticCode | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM static_codes WHERE id = ? AND merchant_id = ?",
                (code_id, merchant_id),
            ).fetchone()
            return None if row is None else _static_code(row)

        return await self._worker.read(op)

    async def revoke(self, merchant_id: str, code_id: str, *, now: int) -> StaticCode:
        """Revokes the merchant's code; revoking it again changes nothing
        (it keeps the first time). Another merchant's code is not found."""

        def op(conn: Connection) -> StaticCode:
            conn.execute(
                "UPDATE static_codes SET revoked_at = ?"
                " WHERE id = ? AND merchant_id = ? AND revoked_at IS NULL",
                (now, code_id, merchant_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM static_codes WHERE id = ? AND merchant_id = ?",
                (code_id, merchant_id),
            ).fetchone()
            if row is None:
                raise Refused(Refusal.STATIC_CODE_NOT_FOUND)
            return _static_code(row)

        return await self._worker.run(op)

    async def scan(self, code: str) -> tuple[StaticCode, Merchant, Checkout | None] | None:
        """The code, its merchant, and its till's newest checkout that a
        cashier made and is still stored as pending; None for no such code."""

        def op(conn: Connection) -> tuple[StaticCode, Merchant, Checkout | None] | None:
            row = conn.execute(
                f"SELECT {_MERCHANT_COLUMNS_OF_M}, {_COLUMNS_OF_S} FROM static_codes s"
                " JOIN merchants m ON m.id = s.merchant_id WHERE s.code = ?",
                (code,),
            ).fetchone()
            if row is None:
                return None
            found = _static_code(row[_MERCHANT_WIDTH:])
            pending = till_checkout(conn, found.merchant_id, found.terminal_id)
            return found, _merchant(row[:_MERCHANT_WIDTH]), pending

        return await self._worker.read(op)

    async def create_checkout(
        self, code: str, amount: object, *, now: int, public_url: str
    ) -> tuple[Checkout, StaticCode, Merchant]:
        """A checkout of the typed ``amount`` at the code's till, decided on
        the code as it is in this transaction (``Refused`` when the rules
        say no, with nothing written), and its merchant (what its QR codes
        encode). The events the core lists for it are written with it: the
        caller wakes the relay."""

        def op(conn: Connection) -> tuple[Checkout, StaticCode, Merchant]:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM static_codes WHERE code = ?{self._dialect.for_update}",
                (code,),
            ).fetchone()
            if row is None:
                raise Refused(Refusal.STATIC_CODE_NOT_FOUND)
            found = _static_code(row)
            pending = till_checkout(conn, found.merchant_id, found.terminal_id)
            _, typed = check_typed_amount(found, pending, amount, now=now)
            fresh = new_static_checkout(found, typed, now=now, public_url=public_url)
            # The order id is the checkout's own, so it is never taken.
            if not insert_checkout(conn, fresh, request_hash=f"static:{found.id}"):
                raise StorageError("a static checkout's order id was taken")
            # What the core lists for a new typed checkout (checkout.created,
            # for its till's terminal), in the same transaction: the outbox.
            for event in creation_events(fresh.snapshot().source):
                write_event(conn, fresh, event, now, self._signing_key)
            merchant = conn.execute(
                f"SELECT {_MERCHANT_COLUMNS} FROM merchants WHERE id = ?", (found.merchant_id,)
            ).fetchone()
            return fresh, found, _merchant(merchant)

        return await self._worker.run(op)
