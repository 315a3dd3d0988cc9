"""The SQLite backend: WAL, durable commits, one writer thread."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from scan2pay_common import jsonfields
from scan2pay_common.messages import EVENT_FOR_STATUS, CheckoutEvent
from scan2pay_common.timefmt import now_ms, to_rfc3339

from .. import credentials
from ..checkout_machine import Action, Purse, Status, decide, decide_payment
from ..errors import Refused, StorageError
from ..payloads import CheckoutRequest
from .base import Storage
from .records import Checkout, Merchant, OutboxEvent, Payment, Wallet
from .sqlite_worker import SqliteWorker

_CHECKOUT_COLUMNS = (
    "id, merchant_id, order_id, amount, currency, description, terminal_id, code, qr_url,"
    " status, created_at, expires_at, updated_at"
)

_CHECKOUT_COLUMNS_OF_C = ", ".join("c." + c.strip() for c in _CHECKOUT_COLUMNS.split(","))


def _checkout(row: Any) -> Checkout:
    (
        id_,
        merchant_id,
        order_id,
        amount,
        currency,
        description,
        terminal_id,
        code,
        qr_url,
        status,
        created_at,
        expires_at,
        updated_at,
    ) = row
    return Checkout(
        id=id_,
        merchant_id=merchant_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        description=description,
        terminal_id=terminal_id,
        code=code,
        qr_url=qr_url,
        status=Status(status),
        created_at=created_at,
        expires_at=expires_at,
        updated_at=updated_at,
    )


def migrate(path: str) -> None:
    """Brings the schema at ``path`` up to date (yoyo keeps the applied list)."""
    from yoyo import get_backend, read_migrations

    folder = resources.files("psp_server.storage") / "migrations"
    try:
        backend = get_backend(f"sqlite:///{path}")
        migrations = read_migrations(str(folder))
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
        backend.connection.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate SQLite database {path!r}: {exc}") from exc


def _check_path(path: str) -> None:
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise StorageError(f"cannot open SQLite database {path!r}: folder {parent} does not exist")


class SqliteStorage(Storage):
    def __init__(self, path: str) -> None:
        _check_path(path)
        migrate(path)
        self.path = path
        self._worker = SqliteWorker(path)

    async def close(self) -> None:
        await self._worker.close()

    # Principals.

    async def create_merchant(self, name: str) -> tuple[Merchant, str]:
        merchant = Merchant(credentials.new_id("mer"), name)
        key = credentials.new_api_key()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO merchants (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)",
                (merchant.id, name, credentials.hash_secret(key), now_ms()),
            )

        await self._worker.run(op)
        return merchant, key

    async def merchant_by_key(self, api_key: str) -> Merchant | None:
        digest = credentials.hash_secret(api_key)

        def op(conn: sqlite3.Connection) -> Merchant | None:
            row = conn.execute(
                "SELECT id, name FROM merchants WHERE api_key_hash = ?", (digest,)
            ).fetchone()
            return Merchant(row[0], row[1]) if row else None

        return await self._worker.run(op)

    async def create_wallet(self, name: str, currency: str, balance: int) -> tuple[Wallet, str]:
        wallet = Wallet(credentials.new_id("wal"), name, currency, balance)
        token = credentials.new_wallet_token()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO wallets (id, name, token_hash, currency, balance, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (wallet.id, name, credentials.hash_secret(token), currency, balance, now_ms()),
            )

        await self._worker.run(op)
        return wallet, token

    async def get_wallet(self, wallet_id: str) -> Wallet | None:
        def op(conn: sqlite3.Connection) -> Wallet | None:
            row = conn.execute(
                "SELECT id, name, currency, balance FROM wallets WHERE id = ?", (wallet_id,)
            ).fetchone()
            return Wallet(*row) if row else None

        return await self._worker.run(op)

    async def wallet_by_token(self, token: str) -> Wallet | None:
        digest = credentials.hash_secret(token)

        def op(conn: sqlite3.Connection) -> Wallet | None:
            row = conn.execute(
                "SELECT id, name, currency, balance FROM wallets WHERE token_hash = ?", (digest,)
            ).fetchone()
            return Wallet(*row) if row else None

        return await self._worker.run(op)

    async def merchant_balances(self, merchant_id: str) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT currency, balance FROM merchant_balances WHERE merchant_id = ?",
                (merchant_id,),
            )
            return {currency: balance for currency, balance in rows}

        return await self._worker.run(op)

    # Checkouts.

    async def create_checkout(
        self, merchant_id: str, request: CheckoutRequest, *, public_url: str, now: int
    ) -> tuple[Checkout, bool]:
        fingerprint = request.fingerprint()
        code = credentials.new_code()
        fresh = Checkout(
            id=credentials.new_id("co"),
            merchant_id=merchant_id,
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            description=request.description,
            terminal_id=request.terminal_id,
            code=code,
            qr_url=f"{public_url.rstrip('/')}/Q/{code}",
            status=Status.PENDING,
            created_at=now,
            expires_at=now + request.expires_in * 1000,
            updated_at=now,
        )

        def op(conn: sqlite3.Connection) -> tuple[Checkout, bool]:
            row = conn.execute(
                f"SELECT request_hash, {_CHECKOUT_COLUMNS} FROM checkouts"
                " WHERE merchant_id = ? AND order_id = ?",
                (merchant_id, request.order_id),
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise Refused("order_conflict")
                return _checkout(row[1:]), False
            conn.execute(
                f"INSERT INTO checkouts (request_hash, {_CHECKOUT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    fresh.id,
                    merchant_id,
                    fresh.order_id,
                    fresh.amount,
                    fresh.currency,
                    fresh.description,
                    fresh.terminal_id,
                    fresh.code,
                    fresh.qr_url,
                    fresh.status.value,
                    fresh.created_at,
                    fresh.expires_at,
                    fresh.updated_at,
                ),
            )
            return fresh, True

        return await self._worker.run(op)

    async def get_checkout(self, merchant_id: str, checkout_id: str) -> Checkout | None:
        def op(conn: sqlite3.Connection) -> Checkout | None:
            row = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE id = ? AND merchant_id = ?",
                (checkout_id, merchant_id),
            ).fetchone()
            return _checkout(row) if row else None

        return await self._worker.run(op)

    async def cancel_checkout(self, merchant_id: str, checkout_id: str, *, now: int) -> Checkout:
        def op(conn: sqlite3.Connection) -> Checkout | _RefusedWith:
            row = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE id = ? AND merchant_id = ?",
                (checkout_id, merchant_id),
            ).fetchone()
            if row is None:
                return _RefusedWith("not_found", None)
            checkout = _checkout(row)
            decision = decide(
                checkout.status, Action.CANCEL, expires_at=checkout.expires_at, now=now
            )
            if decision.new_status is not None:
                checkout = _transition(conn, checkout, decision.new_status, now)
            if decision.refusal is not None:
                return _RefusedWith(decision.refusal, checkout)
            return checkout

        result = await self._worker.run(op)
        if isinstance(result, _RefusedWith):
            raise Refused(result.code)
        return result

    async def lookup_code(self, code: str) -> tuple[Checkout, Merchant] | None:
        def op(conn: sqlite3.Connection) -> tuple[Checkout, Merchant] | None:
            row = conn.execute(
                f"SELECT m.name, {_CHECKOUT_COLUMNS_OF_C}"
                " FROM checkouts c JOIN merchants m ON m.id = c.merchant_id WHERE c.code = ?",
                (code,),
            ).fetchone()
            if row is None:
                return None
            checkout = _checkout(row[1:])
            return checkout, Merchant(checkout.merchant_id, row[0])

        return await self._worker.run(op)

    async def pay(self, wallet_token: str, code: str, *, now: int) -> tuple[Payment, Checkout]:
        token_hash = credentials.hash_secret(wallet_token)
        payment_id = credentials.new_id("pay")

        def op(conn: sqlite3.Connection) -> tuple[Payment, Checkout] | _RefusedWith:
            wallet = conn.execute(
                "SELECT id, currency, balance FROM wallets WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if wallet is None:
                return _RefusedWith("unauthorized", None)
            wallet_id, wallet_currency, wallet_balance = wallet
            row = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE code = ?", (code,)
            ).fetchone()
            if row is None:
                return _RefusedWith("unknown_code", None)
            checkout = _checkout(row)
            decision = decide_payment(
                checkout.status,
                expires_at=checkout.expires_at,
                now=now,
                amount=checkout.amount,
                currency=checkout.currency,
                purse=Purse(wallet_currency, wallet_balance),
            )
            if not decision.accepted:
                if decision.new_status is not None:
                    checkout = _transition(conn, checkout, decision.new_status, now)
                return _RefusedWith(decision.refusal or "refused", checkout)
            # The guard in the WHERE clauses makes the database, not this
            # code, the judge of "exactly once": a second writer finds no row.
            debited = conn.execute(
                "UPDATE wallets SET balance = balance - ? WHERE id = ? AND balance >= ?",
                (checkout.amount, wallet_id, checkout.amount),
            ).rowcount
            if debited != 1:
                return _RefusedWith("insufficient_funds", checkout)
            paid = _transition(conn, checkout, Status.PAID, now)
            conn.execute(
                "INSERT INTO merchant_balances (merchant_id, currency, balance) VALUES (?, ?, ?)"
                " ON CONFLICT (merchant_id, currency) DO UPDATE"
                " SET balance = balance + excluded.balance",
                (checkout.merchant_id, checkout.currency, checkout.amount),
            )
            payment = Payment(
                payment_id, checkout.id, wallet_id, checkout.amount, checkout.currency, now
            )
            conn.execute(
                "INSERT INTO payments (id, checkout_id, wallet_id, amount, currency, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    payment.id,
                    payment.checkout_id,
                    payment.wallet_id,
                    payment.amount,
                    payment.currency,
                    payment.created_at,
                ),
            )
            return payment, paid

        result = await self._worker.run(op)
        if isinstance(result, _RefusedWith):
            raise Refused(result.code)
        return result

    async def expire_due(self, *, now: int, limit: int = 500) -> int:
        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts"
                " WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in rows:
                checkout = _checkout(row)
                decision = decide(
                    checkout.status, Action.EXPIRE, expires_at=checkout.expires_at, now=now
                )
                if decision.new_status is not None:
                    _transition(conn, checkout, decision.new_status, now)
            return len(rows)

        return await self._worker.run(op)

    # The outbox.

    async def unpublished_events(self, *, limit: int = 500) -> list[OutboxEvent]:
        def op(conn: sqlite3.Connection) -> list[OutboxEvent]:
            rows = conn.execute(
                "SELECT position, event_id, merchant_id, seq, type, payload FROM events"
                " WHERE published_at IS NULL ORDER BY position LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                OutboxEvent(pos, eid, mid, seq, typ, payload.encode())
                for pos, eid, mid, seq, typ, payload in rows
            ]

        return await self._worker.run(op)

    async def mark_published(self, positions: list[int], *, now: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE events SET published_at = ? WHERE position = ?",
                [(now, position) for position in positions],
            )

        await self._worker.run(op)


class _RefusedWith:
    """A refusal handed out of the writer thread as a value, not raised inside
    it: raising would roll back what the refusal itself records (an expiry)."""

    __slots__ = ("checkout", "code")

    def __init__(self, code: str, checkout: Checkout | None) -> None:
        self.code = code
        self.checkout = checkout


def _transition(conn: sqlite3.Connection, checkout: Checkout, status: Status, now: int) -> Checkout:
    """Moves a pending checkout to ``status`` and writes the event announcing
    it, in the caller's transaction (the transactional outbox)."""
    changed = conn.execute(
        "UPDATE checkouts SET status = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
        (status.value, now, checkout.id),
    ).rowcount
    if changed != 1:
        raise StorageError(f"checkout {checkout.id} was not pending")
    moved = replace(checkout, status=status, updated_at=now)
    seq = conn.execute(
        "UPDATE merchants SET last_event_seq = last_event_seq + 1 WHERE id = ?"
        " RETURNING last_event_seq",
        (checkout.merchant_id,),
    ).fetchone()[0]
    event = CheckoutEvent(
        event_id=credentials.new_id("evt"),
        seq=seq,
        type=EVENT_FOR_STATUS[status.value],
        merchant_id=checkout.merchant_id,
        checkout=moved.snapshot(),
        created_at=to_rfc3339(now),
    )
    conn.execute(
        "INSERT INTO events (event_id, merchant_id, seq, type, checkout_id, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            event.event_id,
            event.merchant_id,
            seq,
            event.type,
            checkout.id,
            jsonfields.dumps(event.to_dict()).decode(),
            now,
        ),
    )
    return moved
