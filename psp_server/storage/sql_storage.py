"""The storage as SQL that SQLite and PostgreSQL both run (sqlite.py, postgres.py)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from psp_server.core import credentials
from psp_server.core.effects import AccountKind, NewEvent, Posting, Transfer, opening
from psp_server.core.errors import Refusal, Refused, StorageError
from psp_server.core.machine import (
    Action,
    Decision,
    Purse,
    Status,
    decide,
    decide_order,
    decide_payment,
    decide_refund,
)
from psp_server.core.orders import new_checkout
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.qr import URL_ONLY, QrSettings
from psp_server.core.records import (
    Answer,
    BoardChanges,
    Checkout,
    IdempotencyKey,
    KeyInfo,
    Merchant,
    MerchantDay,
    OutboxBacklog,
    OutboxEvent,
    Payment,
    Refund,
    Reply,
    StatusTotal,
    Wallet,
)
from psp_server.storage.base import Storage
from psp_server.storage.believed import Believed
from psp_server.storage.dbapi import Connection, Cursor, Dialect, Worker
from psp_server.storage.partitions import PARTITIONS
from scan2pay_common import jsonfields
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.signing import PublicKey, SigningKey
from scan2pay_common.timefmt import to_rfc3339

T = TypeVar("T")

# The advisory lock the expiry sweeper holds for its transaction on
# PostgreSQL: "s2p" "swee".
SWEEPER_LOCK = (0x73327000, 0x73776565)

# How long a merchant key or a wallet token, once found, is believed
# without asking again.
MERCHANT_KEY_CACHE_MS = 1_000
WALLET_TOKEN_CACHE_MS = MERCHANT_KEY_CACHE_MS

_CHECKOUT_COLUMNS = (
    "id, merchant_id, order_id, amount, currency, description, terminal_id, code, qr_url,"
    " status, created_at, expires_at, updated_at, refunded_amount, static_code_id"
)
_CHECKOUT_PLACEHOLDERS = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"  # one per column above

_CHECKOUT_COLUMNS_OF_C = ", ".join("c." + c.strip() for c in _CHECKOUT_COLUMNS.split(","))

_MERCHANT_COLUMNS = "id, name, qr_format, mcc, country, city, emv_profile, emv_gui"
_MERCHANT_COLUMNS_OF_M = ", ".join("m." + c.strip() for c in _MERCHANT_COLUMNS.split(","))
_MERCHANT_WIDTH = _MERCHANT_COLUMNS.count(",") + 1
_EVENTS_AFTER = (
    "SELECT position, event_id, merchant_id, seq, type, terminal_id, payload"
    " FROM events WHERE merchant_id = ? AND seq > ?"
)

# checkout_machine.effective_status in SQL, for the statements that sort many
# checkouts at once (the sweeper's choice of what to expire, a day's totals),
# where asking the core row by row would mean reading every row: a pending
# checkout is expired from the millisecond its expires_at comes (now >=
# expires_at; the one parameter is now). The words are the core's Status;
# 'pending' is written into the statement, not passed, so that the planner
# can use the partial index checkouts_pending_by_expiry.
# tests/psp_server/storage/test_storage_agrees_with_core.py holds the two to the same boundary.
_LAPSED = f"status = '{Status.PENDING}' AND expires_at <= ?"
_EFFECTIVE_STATUS = f"CASE WHEN {_LAPSED} THEN '{Status.EXPIRED}' ELSE status END"


def _merchant(row: Any) -> Merchant:
    id_, name, qr_format, mcc, country, city, emv_profile, emv_gui = row
    try:
        qr = QrSettings(qr_format, mcc, country, city, emv_profile, emv_gui)
    except InvalidValue:
        # Written through QrSettings, so only a scheme's profile taken out of
        # the code since gets here: its merchants' codes are bare URLs again.
        qr = URL_ONLY
    return Merchant(id_, name, qr)


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
        refunded_amount,
        static_code_id,
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
        refunded_amount=refunded_amount,
        static_code_id=static_code_id,
    )


def insert_checkout(conn: Connection, fresh: Checkout, request_hash: str) -> bool:
    """Writes a new checkout; False, writing nothing, when its merchant has
    a checkout with its order id already."""
    inserted: int = conn.execute(
        f"INSERT INTO checkouts (request_hash, {_CHECKOUT_COLUMNS})"
        f" VALUES (?, {_CHECKOUT_PLACEHOLDERS})"
        " ON CONFLICT (merchant_id, order_id) DO NOTHING",
        (
            request_hash,
            fresh.id,
            fresh.merchant_id,
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
            fresh.refunded_amount,
            fresh.static_code_id,
        ),
    ).rowcount
    return inserted == 1


def till_checkout(conn: Connection, merchant_id: str, terminal_id: str) -> Checkout | None:
    """The newest checkout a cashier made for the till that is stored as
    pending (it may have lapsed since): what a printed till code shows
    (``psp_server.core.static_codes``)."""
    row = conn.execute(
        f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts"
        " WHERE merchant_id = ? AND terminal_id = ? AND status = 'pending'"
        " AND static_code_id IS NULL ORDER BY created_at DESC LIMIT 1",
        (merchant_id, terminal_id),
    ).fetchone()
    return None if row is None else _checkout(row)


def active_key(conn: Connection) -> SigningKey | None:
    row = conn.execute("SELECT private_key FROM signing_keys WHERE active = 1").fetchone()
    return None if row is None else SigningKey(bytes(row[0]))


def new_active_key(conn: Connection, now: int) -> SigningKey:
    key = SigningKey.generate()
    conn.execute("UPDATE signing_keys SET active = 0 WHERE active = 1")
    conn.execute(
        "INSERT INTO signing_keys (kid, private_key, public_key, created_at, active)"
        " VALUES (?, ?, ?, ?, 1)",
        (key.kid, key.private_bytes(), key.public.raw, now),
    )
    return key


class SqlStorage(Storage):
    """Every operation of the storage as SQL that SQLite and PostgreSQL both
    run, each a function of one connection that a worker runs in one
    transaction: the backends differ in their worker and dialect only.
    ``clock`` dates the rows it makes and times its cache of merchant keys
    (the app's ``CLOCK``)."""

    def __init__(
        self,
        worker: Worker,
        signing_key: SigningKey,
        dialect: Dialect,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._worker = worker
        self._signing_key = signing_key
        self._dialect = dialect
        self._clock = clock
        self._merchant_keys: Believed[Merchant] = Believed(MERCHANT_KEY_CACHE_MS, clock)
        self._wallet_tokens: Believed[str] = Believed(WALLET_TOKEN_CACHE_MS, clock)

    async def close(self) -> None:
        await self._worker.close()

    # Signing keys.

    @property
    def signing_key(self) -> SigningKey:
        return self._signing_key

    async def signing_keys(self) -> list[KeyInfo]:
        def op(conn: Connection) -> list[KeyInfo]:
            rows = conn.execute(
                "SELECT kid, public_key, created_at, active FROM signing_keys"
                " ORDER BY active DESC, created_at DESC, kid"
            ).fetchall()
            return [
                KeyInfo(kid, PublicKey(bytes(raw)).text, created_at, bool(active))
                for kid, raw, created_at, active in rows
            ]

        return await self._worker.read(op)

    async def rotate_signing_key(self, *, now: int) -> KeyInfo:
        def op(conn: Connection) -> KeyInfo:
            key = new_active_key(conn, now)
            return KeyInfo(key.kid, key.public.text, now, True)

        return await self._worker.run(op)

    @property
    def worker(self) -> Worker:
        """The writer, for stores that share this database (webhooks)."""
        return self._worker

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    # Principals.

    async def create_merchant(self, name: str) -> tuple[Merchant, str]:
        merchant = Merchant(credentials.new_id("mer"), name)
        key = credentials.new_api_key()

        def op(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO merchants (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)",
                (merchant.id, name, credentials.hash_secret(key), self._clock.now_ms()),
            )

        await self._worker.run(op)
        return merchant, key

    async def merchant_by_key(self, api_key: str) -> Merchant | None:
        """Every merchant request asks this first; a found key is believed
        for ``MERCHANT_KEY_CACHE_MS`` (``believed.Believed``)."""
        digest = credentials.hash_secret(api_key)
        return await self._merchant_keys.find(digest, lambda: self._merchant_by_digest(digest))

    async def _merchant_by_digest(self, digest: str) -> Merchant | None:

        def op(conn: Connection) -> Merchant | None:
            row = conn.execute(
                f"SELECT api_key_hash, {_MERCHANT_COLUMNS} FROM merchants WHERE api_key_hash = ?",
                (digest,),
            ).fetchone()
            # The index finds the row by hash; the final word is a constant-time
            # comparison, so that no answer depends on how much of it matched.
            if row is None or not hmac.compare_digest(row[0], digest):
                return None
            return _merchant(row[1:])

        return await self._worker.read(op)

    async def merchant_with_key_hash(self, merchant_id: str) -> tuple[Merchant, str, int] | None:
        def op(conn: Connection) -> tuple[Merchant, str, int] | None:
            row = conn.execute(
                f"SELECT api_key_hash, session_epoch, {_MERCHANT_COLUMNS} FROM merchants"
                " WHERE id = ?",
                (merchant_id,),
            ).fetchone()
            return None if row is None else (_merchant(row[2:]), row[0], int(row[1]))

        return await self._worker.read(op)

    async def update_qr_settings(self, merchant_id: str, settings: QrSettings) -> Merchant | None:
        def op(conn: Connection) -> Merchant | None:
            changed = conn.execute(
                "UPDATE merchants SET qr_format = ?, mcc = ?, country = ?, city = ?,"
                " emv_profile = ?, emv_gui = ? WHERE id = ?",
                (
                    settings.format,
                    settings.mcc,
                    settings.country,
                    settings.city,
                    settings.emv_profile,
                    settings.emv_gui,
                    merchant_id,
                ),
            )
            if changed.rowcount != 1:
                return None
            row = conn.execute(
                f"SELECT {_MERCHANT_COLUMNS} FROM merchants WHERE id = ?", (merchant_id,)
            ).fetchone()
            return _merchant(row)

        try:
            return await self._worker.run(op)
        finally:
            # After the commit: this process's requests see the new settings
            # at once, other processes' within MERCHANT_KEY_CACHE_MS.
            self._merchant_keys.forget()

        return await self._worker.read(op)

    async def end_sessions(self, merchant_id: str) -> None:
        def op(conn: Connection) -> None:
            conn.execute(
                "UPDATE merchants SET session_epoch = session_epoch + 1 WHERE id = ?",
                (merchant_id,),
            )

        await self._worker.run(op)

    async def replace_secret(self, kind: str, owner_id: str, *, revoke: bool) -> str | None:
        make = credentials.new_api_key if kind == "merchant" else credentials.new_wallet_token
        secret = None if revoke else make()
        # A revoked hash is no SHA-256 hex digest, so that no secret can match it.
        stored = credentials.revoked_marker() if secret is None else credentials.hash_secret(secret)

        def op(conn: Connection) -> bool:
            if kind == "merchant":
                changed = conn.execute(
                    "UPDATE merchants SET api_key_hash = ? WHERE id = ?", (stored, owner_id)
                )
            else:
                changed = conn.execute(
                    "UPDATE wallets SET token_hash = ? WHERE id = ?", (stored, owner_id)
                )
            return changed.rowcount == 1

        try:
            if not await self._worker.run(op):
                raise Refused(Refusal.NOT_FOUND)
        finally:
            # After the commit: a request that read the old key while the
            # change was on its way must not keep it believed.
            self._merchant_keys.forget()
            self._wallet_tokens.forget()
        return secret

    async def create_wallet(self, name: str, currency: str, balance: int) -> tuple[Wallet, str]:
        wallet = Wallet(credentials.new_id("wal"), name, currency, balance)
        token = credentials.new_wallet_token()
        now = self._clock.now_ms()

        def op(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO wallets (id, name, token_hash, currency, balance, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (wallet.id, name, credentials.hash_secret(token), currency, balance, now),
            )
            # The INSERT above wrote the balance these entries cache.
            for transfer in opening(credentials.new_id("fund"), wallet.id, currency, balance):
                _post(conn, transfer, now)

        await self._worker.run(op)
        return wallet, token

    async def get_wallet(self, wallet_id: str) -> Wallet | None:
        def op(conn: Connection) -> Wallet | None:
            row = conn.execute(
                "SELECT id, name, currency, balance FROM wallets WHERE id = ?", (wallet_id,)
            ).fetchone()
            return Wallet(*row) if row else None

        return await self._worker.read(op)

    async def wallet_id_by_token(self, token: str) -> str | None:
        """The wallet a payment's token names, believed for
        ``WALLET_TOKEN_CACHE_MS`` once found, as merchant keys are: a wallet
        that pays again within it costs no read before its write. Only the
        id is kept; the balance is the write's to read."""
        digest = credentials.hash_secret(token)

        def op(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT id, token_hash FROM wallets WHERE token_hash = ?", (digest,)
            ).fetchone()
            # As for merchant keys: the index finds the row, a constant-time
            # comparison has the final word.
            if row is None or not hmac.compare_digest(row[1], digest):
                return None
            return str(row[0])

        return await self._wallet_tokens.find(digest, lambda: self._worker.read(op))

    async def merchant_balances(self, merchant_id: str) -> dict[str, int]:
        def op(conn: Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT currency, balance FROM merchant_balances WHERE merchant_id = ?",
                (merchant_id,),
            )
            return {currency: balance for currency, balance in rows}

        return await self._worker.read(op)

    async def ledger_balances(self) -> dict[tuple[str, str], int]:
        def op(conn: Connection) -> dict[tuple[str, str], int]:
            rows = conn.execute(
                "SELECT account, currency, CAST(SUM(amount) AS BIGINT) FROM ledger_entries"
                " GROUP BY account, currency"
            )
            return {(account, currency): total for account, currency, total in rows}

        return await self._worker.run(op)

    # Checkouts.

    async def create_checkout(
        self, merchant_id: str, request: CheckoutRequest, *, public_url: str, now: int
    ) -> tuple[Checkout, bool]:
        op = self._create_checkout_op(merchant_id, request, public_url=public_url, now=now)
        return _settle(await self._worker.run(op))

    async def create_checkout_reply(
        self,
        answer: Answer[tuple[Checkout, bool]],
        merchant_id: str,
        request: CheckoutRequest,
        *,
        public_url: str,
        now: int,
        fresh: Checkout | None = None,
    ) -> Reply:
        op = self._create_checkout_op(
            merchant_id, request, public_url=public_url, now=now, fresh=fresh
        )
        return await self._worker.run(_replying(op, answer, now))

    def _create_checkout_op(
        self,
        merchant_id: str,
        request: CheckoutRequest,
        *,
        public_url: str,
        now: int,
        fresh: Checkout | None = None,
    ) -> Callable[[Connection], tuple[Checkout, bool] | Refusal]:
        fingerprint = request.fingerprint()
        if fresh is None:
            fresh = new_checkout(merchant_id, request, public_url=public_url, now=now)

        def op(conn: Connection) -> tuple[Checkout, bool] | Refusal:
            # Insert first and look only when the order was there already: a
            # new order, the common case, costs one statement.
            inserted = insert_checkout(conn, fresh, fingerprint)
            if inserted:
                return fresh, True
            row = conn.execute(
                f"SELECT request_hash, {_CHECKOUT_COLUMNS} FROM checkouts"
                " WHERE merchant_id = ? AND order_id = ?",
                (merchant_id, request.order_id),
            ).fetchone()
            refusal = decide_order(row[0], fingerprint)
            if refusal is not None:
                return refusal
            return _checkout(row[1:]), False

        return op

    async def get_checkout(self, merchant_id: str, checkout_id: str) -> Checkout | None:
        def op(conn: Connection) -> Checkout | None:
            row = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE id = ? AND merchant_id = ?",
                (checkout_id, merchant_id),
            ).fetchone()
            return _checkout(row) if row else None

        return await self._worker.read(op)

    async def cancel_checkout(self, merchant_id: str, checkout_id: str, *, now: int) -> Checkout:
        key = self._signing_key

        def op(conn: Connection) -> Checkout | Refusal:
            checkout = self._checkout_to_change(conn, merchant_id, checkout_id)
            if checkout is None:
                return Refusal.NOT_FOUND
            decision = decide(
                checkout.status, Action.CANCEL, expires_at=checkout.expires_at, now=now
            )
            checkout = _apply(conn, checkout, decision, now, key)
            return decision.refusal or checkout

        return _settle(await self._worker.run(op))

    def _checkout_to_change(
        self, conn: Connection, merchant_id: str, checkout_id: str
    ) -> Checkout | None:
        """The merchant's checkout, locked for the rest of the transaction."""
        row = conn.execute(
            f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE id = ? AND merchant_id = ?"
            f"{self._dialect.for_update}",
            (checkout_id, merchant_id),
        ).fetchone()
        return None if row is None else _checkout(row)

    async def lookup_code(self, code: str) -> tuple[Checkout, Merchant] | None:
        def op(conn: Connection) -> tuple[Checkout, Merchant] | None:
            row = conn.execute(
                f"SELECT {_MERCHANT_COLUMNS_OF_M}, {_CHECKOUT_COLUMNS_OF_C}"
                " FROM checkouts c JOIN merchants m ON m.id = c.merchant_id WHERE c.code = ?",
                (code,),
            ).fetchone()
            if row is None:
                return None
            return _checkout(row[_MERCHANT_WIDTH:]), _merchant(row[:_MERCHANT_WIDTH])

        return await self._worker.read(op)

    async def pay(self, wallet_id: str, code: str, *, now: int) -> tuple[Payment, Checkout]:
        return _settle(await self._worker.run(self._pay_op(wallet_id, code, now=now)))

    async def pay_reply(
        self, answer: Answer[tuple[Payment, Checkout]], wallet_id: str, code: str, *, now: int
    ) -> Reply:
        op = self._pay_op(wallet_id, code, now=now)
        return await self._worker.run(_replying(op, answer, now))

    def _pay_op(
        self, wallet_id: str, code: str, *, now: int
    ) -> Callable[[Connection], tuple[Payment, Checkout] | Refusal]:
        payment_id = credentials.new_id("pay")
        key = self._signing_key
        dialect = self._dialect

        def op(conn: Connection) -> tuple[Payment, Checkout] | Refusal:
            # The checkout's row first, then the wallet's: refunds lock in
            # the same order, so the two never wait on each other in a circle.
            row = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts WHERE code = ?{dialect.for_update}",
                (code,),
            ).fetchone()
            if row is None:
                return Refusal.UNKNOWN_CODE
            checkout = _checkout(row)
            wallet = conn.execute(
                f"SELECT currency, balance FROM wallets WHERE id = ?{dialect.for_update}",
                (wallet_id,),
            ).fetchone()
            if wallet is None:  # the route found it by its token; wallets are never deleted
                raise StorageError(f"wallet {wallet_id} is not there")
            decision = decide_payment(
                checkout, purse=Purse(wallet_id, *wallet), payment_id=payment_id, now=now
            )

            def record(made: Transfer) -> None:
                conn.execute(
                    "INSERT INTO payments"
                    " (id, checkout_id, wallet_id, amount, currency, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (made.id, checkout.id, wallet_id, made.amount, made.currency, now),
                )

            paid = _apply(conn, checkout, decision, now, key, record=record)
            if decision.refusal is not None:
                return decision.refusal
            (made,) = decision.transfers
            return Payment(made.id, checkout.id, wallet_id, made.amount, made.currency, now), paid

        return op

    async def refund(
        self, merchant_id: str, checkout_id: str, amount: int, *, now: int
    ) -> tuple[Refund, Checkout]:
        op = self._refund_op(merchant_id, checkout_id, amount, now=now)
        return _settle(await self._worker.run(op))

    async def refund_reply(
        self,
        answer: Answer[tuple[Refund, Checkout]],
        merchant_id: str,
        checkout_id: str,
        amount: int,
        *,
        now: int,
    ) -> Reply:
        op = self._refund_op(merchant_id, checkout_id, amount, now=now)
        return await self._worker.run(_replying(op, answer, now))

    def _refund_op(
        self, merchant_id: str, checkout_id: str, amount: int, *, now: int
    ) -> Callable[[Connection], tuple[Refund, Checkout] | Refusal]:
        refund_id = credentials.new_id("re")
        key = self._signing_key

        def op(conn: Connection) -> tuple[Refund, Checkout] | Refusal:
            checkout = self._checkout_to_change(conn, merchant_id, checkout_id)
            if checkout is None:
                return Refusal.NOT_FOUND
            payment = conn.execute(
                "SELECT id, wallet_id FROM payments WHERE checkout_id = ?", (checkout.id,)
            ).fetchone()
            payer = None if payment is None else payment[1]
            decision = decide_refund(checkout, amount=amount, refund_id=refund_id, payer=payer)

            def record(made: Transfer) -> None:
                conn.execute(
                    "INSERT INTO refunds"
                    " (id, checkout_id, payment_id, amount, currency, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (made.id, checkout.id, payment[0], made.amount, made.currency, now),
                )

            refunded = _apply(conn, checkout, decision, now, key, record=record)
            if decision.refusal is not None:
                return decision.refusal
            (made,) = decision.transfers
            refund = Refund(made.id, checkout.id, payment[0], made.amount, made.currency, now)
            return refund, refunded

        return op

    async def expire_due(self, *, now: int, limit: int = 500) -> int:
        key = self._signing_key

        def op(conn: Connection) -> int:
            # One sweeper at a time across processes; the others find the
            # lock taken and leave this round to it.
            if not self._dialect.try_transaction_lock(conn, SWEEPER_LOCK):
                return 0
            rows = conn.execute(
                f"SELECT {_CHECKOUT_COLUMNS} FROM checkouts"
                f" WHERE {_LAPSED} ORDER BY expires_at"
                f" LIMIT ?{self._dialect.skip_locked}",
                (now, limit),
            ).fetchall()
            for row in rows:
                checkout = _checkout(row)
                decision = decide(
                    checkout.status, Action.EXPIRE, expires_at=checkout.expires_at, now=now
                )
                _apply(conn, checkout, decision, now, key)
            return len(rows)

        return await self._worker.run(op)

    # The merchant's board. Reads only, on the reader (SQLite) or a pooled
    # connection (PostgreSQL): the board never waits for a group commit.

    async def merchant_day(
        self, merchant_id: str, since: int, *, now: int, limit: int = 200
    ) -> MerchantDay:
        dialect = self._dialect

        def op(conn: Connection) -> MerchantDay:
            # The cursor first: whatever changes after it is read again as
            # an event, so a change between these statements is never lost.
            row = conn.execute(
                "SELECT last_event_seq FROM merchants WHERE id = ?", (merchant_id,)
            ).fetchone()
            return MerchantDay(
                _newest_checkouts(conn, dialect, merchant_id, since, limit),
                _day_totals(conn, dialect, merchant_id, since, now),
                0 if row is None else row[0],
            )

        return await self._worker.read(op)

    async def day_totals(self, merchant_id: str, since: int, *, now: int) -> list[StatusTotal]:
        dialect = self._dialect
        return await self._worker.read(
            lambda conn: _day_totals(conn, dialect, merchant_id, since, now)
        )

    async def board_changes(
        self, merchant_id: str, *, after_seq: int, created_since: int, limit: int = 200
    ) -> BoardChanges:
        dialect = self._dialect

        def op(conn: Connection) -> BoardChanges:
            # A merchant's seq has no gaps and commits in order, so a cursor
            # on it skips nothing; the row joined is the checkout as it is now.
            events = conn.execute(
                f"SELECT e.seq, {_CHECKOUT_COLUMNS_OF_C}"
                " FROM events e JOIN checkouts c ON c.id = e.checkout_id"
                " WHERE e.merchant_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
                (merchant_id, after_seq, limit),
            ).fetchall()
            # A new checkout writes no event: the recent ones are read by
            # time, which the caller's window overlaps on purpose (an id is
            # drawn before its commit, so no cursor on ids or times is safe).
            # Newest first: past the limit, the board shows the latest.
            created = _newest_checkouts(conn, dialect, merchant_id, created_since, limit)
            return BoardChanges(
                changed=[_checkout(r[1:]) for r in events],
                created=created,
                event_seq=events[-1][0] if events else after_seq,
                more=len(events) == limit,
            )

        return await self._worker.read(op)

    # The outbox.

    async def unpublished_events(
        self, *, limit: int = 500, after: int = 0, partitions: Sequence[int] | None = None
    ) -> list[OutboxEvent]:
        def op(conn: Connection) -> list[OutboxEvent]:
            if partitions is None:
                rows = conn.execute(
                    "SELECT position, event_id, merchant_id, seq, type, terminal_id, payload"
                    " FROM events WHERE published_at IS NULL AND position > ?"
                    " ORDER BY position LIMIT ?",
                    (after, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT position, event_id, merchant_id, seq, type, terminal_id, payload"
                    " FROM events WHERE published_at IS NULL AND position > ?"
                    f" AND {self._dialect.in_partitions('merchant_id')}"
                    " ORDER BY position LIMIT ?",
                    (after, PARTITIONS, list(partitions), limit),
                ).fetchall()
            return [
                OutboxEvent(pos, eid, mid, seq, typ, terminal, payload.encode())
                for pos, eid, mid, seq, typ, terminal, payload in rows
            ]

        if partitions is not None and not self._dialect.shared:
            raise StorageError("merchant partitions need PostgreSQL")
        # A range of the partial index of unsent events, on the reader: the
        # relay does not wait for a group commit to learn what to send.
        return await self._worker.read(op)

    async def mark_published(self, positions: list[int], *, now: int) -> None:
        def op(conn: Connection) -> None:
            conn.executemany(
                "UPDATE events SET published_at = ? WHERE position = ?",
                [(now, position) for position in positions],
            )

        await self._worker.run(op)

    async def events_after(
        self, merchant_id: str, after: int, *, limit: int, terminal_id: str | None = None
    ) -> list[OutboxEvent]:
        def op(conn: Connection) -> list[OutboxEvent]:
            if terminal_id is None:
                rows = conn.execute(
                    f"{_EVENTS_AFTER} ORDER BY seq LIMIT ?", (merchant_id, after, limit)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"{_EVENTS_AFTER} AND terminal_id = ? ORDER BY seq LIMIT ?",
                    (merchant_id, after, terminal_id, limit),
                ).fetchall()
            return [
                OutboxEvent(pos, eid, mid, seq, typ, terminal, payload.encode())
                for pos, eid, mid, seq, typ, terminal, payload in rows
            ]

        return await self._worker.run(op)

    async def outbox_backlog(self) -> OutboxBacklog:
        def op(conn: Connection) -> OutboxBacklog:
            pending, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM events WHERE published_at IS NULL"
            ).fetchone()
            return OutboxBacklog(int(pending), None if oldest is None else int(oldest))

        return await self._worker.read(op)

    # The schema.

    async def applied_migrations(self) -> set[str]:
        def op(conn: Connection) -> set[str]:
            rows = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
            return {str(row[0]) for row in rows}

        return await self._worker.read(op)

    # Idempotency keys.

    async def purge_idempotency_keys(self, before: int, *, limit: int = 5000) -> int:
        def op(conn: Connection) -> int:
            # Oldest first and bounded, so that one purge never holds the
            # single writer for long; call again while it returns ``limit``.
            return conn.execute(
                "DELETE FROM idempotency_keys WHERE (principal, endpoint, key) IN"
                " (SELECT principal, endpoint, key FROM idempotency_keys"
                " WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                (before, limit),
            ).rowcount

        return await self._worker.run(op)


def _newest_checkouts(
    conn: Connection, dialect: Dialect, merchant_id: str, since: int, limit: int
) -> list[Checkout]:
    rows = conn.execute(
        f"SELECT {_CHECKOUT_COLUMNS}"
        f" FROM checkouts{dialect.indexed_by('checkouts_of_merchant_by_time')}"
        " WHERE merchant_id = ? AND created_at >= ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (merchant_id, since, limit),
    ).fetchall()
    return [_checkout(r) for r in rows]


def _day_totals(
    conn: Connection, dialect: Dialect, merchant_id: str, since: int, now: int
) -> list[StatusTotal]:
    """Counted by the database over the whole span, not from the rows a
    board shows (at most a few hundred of the day's)."""
    rows = conn.execute(
        f"SELECT currency, {_EFFECTIVE_STATUS},"
        " COUNT(*), CAST(SUM(amount) AS BIGINT), CAST(SUM(refunded_amount) AS BIGINT)"
        f" FROM checkouts{dialect.indexed_by('checkouts_of_merchant_by_time')}"
        " WHERE merchant_id = ? AND created_at >= ?"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (now, merchant_id, since),
    ).fetchall()
    return [
        StatusTotal(currency, Status(status), count, amount, refunded)
        for currency, status, count, amount, refunded in rows
    ]


# An operation hands a refusal out of the writer as a value (a Refusal), not
# raised inside it: raising would roll back what the refusal itself records
# (an expiry), and on SQLite replay the whole commit group.


def _settle(result: T | Refusal) -> T:
    if isinstance(result, Refusal):
        raise Refused(result)
    return result


def _replying(
    op: Callable[[Connection], T | Refusal], answer: Answer[T], now: int
) -> Callable[[Connection], Reply]:
    """``op`` with its answer rendered in its transaction and, under an
    idempotency key, stored there too: the key's row and the work it did are
    committed together or not at all. A key seen before replays its stored
    answer and does no work."""

    def run(conn: Connection) -> Reply:
        key = answer.key
        if key is not None:
            stored = _stored_reply(conn, key)
            if stored is not None:
                return stored
        outcome = op(conn)
        reply = answer.render(Refused(outcome) if isinstance(outcome, Refusal) else outcome)
        # A 5xx says nothing about the request; the client should retry it.
        if key is not None and reply.status < 500:
            conn.execute(
                "INSERT INTO idempotency_keys"
                " (principal, endpoint, key, request_hash, status, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key.scope, key.request_hash, reply.status, reply.body, now),
            )
        return reply

    return run


def _stored_reply(conn: Connection, key: IdempotencyKey) -> Reply | None:
    row = conn.execute(
        "SELECT request_hash, status, body FROM idempotency_keys"
        " WHERE principal = ? AND endpoint = ? AND key = ?",
        key.scope,
    ).fetchone()
    if row is None:
        return None
    if row[0] != key.request_hash:
        raise Refused(Refusal.IDEMPOTENCY_MISMATCH)
    return Reply(row[1], bytes(row[2]), replayed=True)


# Applying a decision. The rules are checkout_machine's; what follows writes
# what a Decision lists. Where a statement's WHERE clause restates a fact the
# decision was made on, it is the database's proof of that fact, checked by
# _proof: the rows were read and locked in this transaction, so the proof
# fails only through a bug, never as a refusal.


class ProofFailed(StorageError):
    """The database does not hold a fact the checkout rules decided on: the
    transaction is rolled back and nothing it wrote stays."""


def _proof(cursor: Cursor, fact: str, *args: object) -> None:
    """``fact % args`` is written out only when the proof fails: this runs
    several times in every payment."""
    if cursor.rowcount != 1:
        raise ProofFailed(f"the database does not prove what was decided: {fact % args}")


def _apply(
    conn: Connection,
    checkout: Checkout,
    decision: Decision,
    now: int,
    key: SigningKey,
    *,
    record: Callable[[Transfer], None] | None = None,
) -> Checkout:
    """Writes ``decision`` about ``checkout`` (as read, locked, in this
    transaction) and returns the checkout as it leaves it. In this order:
    the wallets' balances, the record of each transfer (``record``: its
    payment or refund row), the ledger, the merchants' balances, the
    checkout's row, its events. The merchant's rows come last: every
    payment to the merchant waits for those locks (the balance, the event's
    seq) until this transaction commits, so they are taken as late as they
    can be."""
    postings = [(transfer, transfer.postings) for transfer in decision.transfers]
    for transfer, pair in postings:
        for posting in pair:
            if posting.account.kind is AccountKind.WALLET:
                _add_to_wallet(conn, posting.account.owner, posting.amount)
        if record is not None:
            record(transfer)
        _post(conn, transfer, now, pair)
    for _, pair in postings:
        for posting in pair:
            if posting.account.kind is AccountKind.MERCHANT:
                _add_to_merchant(conn, posting.account.owner, posting.currency, posting.amount)
    if not decision.changes_checkout:
        return checkout
    changed = checkout.changed(
        decision.new_status or checkout.status,
        checkout.refunded_amount if decision.refunded_amount is None else decision.refunded_amount,
        now,
    )
    # The proof that the checkout is as the rules read it: a second writer
    # (a payment racing a cancellation) would have changed it.
    _proof(
        conn.execute(
            "UPDATE checkouts SET status = ?, refunded_amount = ?, updated_at = ?"
            " WHERE id = ? AND status = ? AND refunded_amount = ?",
            (
                changed.status.value,
                changed.refunded_amount,
                now,
                checkout.id,
                checkout.status.value,
                checkout.refunded_amount,
            ),
        ),
        "checkout %s is %s with %s refunded",
        checkout.id,
        checkout.status.value,
        checkout.refunded_amount,
    )
    for event in decision.events:
        write_event(conn, changed, event, now, key)
    return changed


def _post(
    conn: Connection,
    transfer: Transfer,
    now: int,
    postings: tuple[Posting, Posting] | None = None,
) -> None:
    """The transfer's two ledger entries, which sum to zero (``postings``:
    the transfer's own, when the caller has them already)."""
    out, into = transfer.postings if postings is None else postings
    conn.execute(
        "INSERT INTO ledger_entries (transaction_id, account, currency, amount, created_at)"
        " VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)",
        (
            *(transfer.id, out.account.name, out.currency, out.amount, now),
            *(transfer.id, into.account.name, into.currency, into.amount, now),
        ),
    )


def _add_to_wallet(conn: Connection, wallet_id: str, amount: int) -> None:
    """The wallet's cached balance, kept with the ledger entries it sums;
    the proof that the wallet can pay is that it never goes below zero."""
    _proof(
        conn.execute(
            "UPDATE wallets SET balance = balance + ? WHERE id = ? AND balance + ? >= 0",
            (amount, wallet_id, amount),
        ),
        "wallet %s holds at least %s",
        wallet_id,
        -amount,
    )


def _add_to_merchant(conn: Connection, merchant_id: str, currency: str, amount: int) -> None:
    """The merchant's cached balance, kept with the ledger entries it sums."""
    conn.execute(
        "INSERT INTO merchant_balances (merchant_id, currency, balance) VALUES (?, ?, ?)"
        " ON CONFLICT (merchant_id, currency) DO UPDATE"
        " SET balance = merchant_balances.balance + excluded.balance",
        (merchant_id, currency, amount),
    )


def write_event(
    conn: Connection, checkout: Checkout, new: NewEvent, now: int, key: SigningKey
) -> None:
    """``new`` about ``checkout`` (as the decision left it), with the
    merchant's next ``seq`` and signed with ``key``, in the caller's
    transaction (the transactional outbox). The signed bytes are stored and
    published as they are."""
    seq = conn.execute(
        "UPDATE merchants SET last_event_seq = last_event_seq + 1 WHERE id = ?"
        " RETURNING last_event_seq",
        (checkout.merchant_id,),
    ).fetchone()[0]
    announced = (
        checkout
        if (new.status, new.refunded_amount) == (checkout.status, checkout.refunded_amount)
        else checkout.changed(new.status, new.refunded_amount, checkout.updated_at)
    )
    event = CheckoutEvent(
        event_id=credentials.new_id("evt"),
        seq=seq,
        type=new.type,
        merchant_id=checkout.merchant_id,
        checkout=announced.snapshot(),
        created_at=to_rfc3339(now),
    )
    conn.execute(
        "INSERT INTO events (event_id, merchant_id, seq, type, checkout_id, terminal_id,"
        " payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.event_id,
            event.merchant_id,
            seq,
            event.type,
            checkout.id,
            checkout.terminal_id,
            jsonfields.dumps(key.sign(event.to_dict())).decode(),
            now,
        ),
    )
