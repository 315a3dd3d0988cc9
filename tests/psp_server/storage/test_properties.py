"""Property-based: random sequences of create, retry, pay (with and without
an idempotency key), refund, cancel, expire and sweep against the real
storage, SQLite and PostgreSQL, with the invariants checked after every step. The model
below is written out by hand, not taken from checkout_machine, so that the
two can disagree."""

from __future__ import annotations

import asyncio
import atexit
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from psp_server.core.errors import Refused
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.records import Reply
from psp_server.storage.postgres import PostgresStorage, migrate
from psp_server.storage.sql_storage import SqlStorage
from psp_server.storage.sqlite import SqliteStorage
from tests.support.db import connect as db_connect
from tests.support.db import migrated_sqlite
from tests.support.postgres import PgServer, create_database, drop_database, running_server

T = TypeVar("T")

START = 1_800_000_000_000
WALLETS = 3
OPENING = 1_000


@dataclass
class ModelCheckout:
    id: str
    code: str
    amount: int
    expires_at: int
    status: str = "pending"
    payer: int | None = None  # the wallet that paid
    refunded: int = 0


class CheckoutLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.loop = asyncio.new_event_loop()
        self.storage = self.run(self._open())
        self.merchant, _ = self.run(self.storage.create_merchant("Prop Shop"))
        self.wallet_ids: list[str] = []
        self.balances: list[int] = []
        for n in range(WALLETS):
            wallet, _ = self.run(self.storage.create_wallet(f"w{n}", "EUR", OPENING))
            self.wallet_ids.append(wallet.id)
            self.balances.append(OPENING)
        # (wallet, Idempotency-Key) -> (the code it paid, the answer given)
        self.keys: dict[tuple[int, str], tuple[str, Reply]] = {}
        self.refunds = 0
        self.now = START
        self.checkouts: list[ModelCheckout] = []
        self.orders: dict[str, tuple[int, int]] = {}  # order id -> (amount, expires_in)
        self.final_changes = 0

    async def _open(self) -> SqlStorage:
        self.db = migrated_sqlite(Path(self.folder.name) / "prop.db")
        return SqliteStorage(self.db)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def attempt(self, coro: Coroutine[Any, Any, T]) -> T | Refused:
        """The operation's result, or the refusal it raised: either may be
        right, and the rule checks which against the model."""
        try:
            return self.loop.run_until_complete(coro)
        except Refused as exc:
            return exc

    def teardown(self) -> None:
        self.run(self.storage.close())
        self.loop.close()
        self.folder.cleanup()

    def _effective(self, checkout: ModelCheckout) -> str:
        if checkout.status == "pending" and self.now >= checkout.expires_at:
            return "expired"
        return checkout.status

    def _lapse(self, checkout: ModelCheckout) -> None:
        """The storage records an expiry it finds on its way."""
        if checkout.status == "pending" and self.now >= checkout.expires_at:
            checkout.status = "expired"
            self.final_changes += 1

    # Rules.

    @rule(
        order=st.sampled_from(["A", "B", "C", "D", "E", "F"]),
        amount=st.integers(1, 600),
        expires_in=st.sampled_from([1, 30, 300]),
    )
    def create(self, order: str, amount: int, expires_in: int) -> None:
        request = CheckoutRequest.parse(
            {"order_id": order, "amount": amount, "currency": "EUR", "expires_in": expires_in},
            max_amount=10_000,
        )
        made = self.attempt(
            self.storage.create_checkout(
                self.merchant.id, request, public_url="HTTP://PSP", now=self.now
            )
        )
        if isinstance(made, Refused):
            assert made.code == "order_conflict"
            assert order in self.orders
            assert self.orders[order] != (amount, expires_in)
            return
        checkout, created = made
        if order in self.orders:
            assert not created  # a retry
            assert self.orders[order] == (amount, expires_in)
            assert any(c.id == checkout.id for c in self.checkouts)
        else:
            assert created
            self.orders[order] = (amount, expires_in)
            self.checkouts.append(
                ModelCheckout(checkout.id, checkout.code, amount, self.now + expires_in * 1000)
            )

    @precondition(lambda self: self.checkouts)
    @rule(pick=st.integers(0, 100), wallet=st.integers(0, WALLETS - 1))
    def pay(self, pick: int, wallet: int) -> None:
        checkout = self.checkouts[pick % len(self.checkouts)]
        expected = {"paid": "already_paid", "cancelled": "cancelled", "expired": "expired"}.get(
            self._effective(checkout)
        )
        if expected is None and self.balances[wallet] < checkout.amount:
            expected = "insufficient_funds"
        paid = self.attempt(self.storage.pay(self.wallet_ids[wallet], checkout.code, now=self.now))
        if isinstance(paid, Refused):
            assert paid.code == expected
            self._lapse(checkout)
            return
        assert expected is None
        checkout.status = "paid"
        self.balances[wallet] -= checkout.amount
        self.final_changes += 1

    @precondition(lambda self: self.checkouts)
    @rule(pick=st.integers(0, 100))
    def cancel(self, pick: int) -> None:
        checkout = self.checkouts[pick % len(self.checkouts)]
        expected = {"paid": "already_paid", "expired": "expired"}.get(self._effective(checkout))
        moved = self.attempt(
            self.storage.cancel_checkout(self.merchant.id, checkout.id, now=self.now)
        )
        if isinstance(moved, Refused):
            assert moved.code == expected
            self._lapse(checkout)
            return
        assert expected is None
        assert moved.status.value == "cancelled"
        if checkout.status == "pending":
            checkout.status = "cancelled"
            self.final_changes += 1

    @rule(ms=st.integers(0, 400_000))
    def time_passes(self, ms: int) -> None:
        self.now += ms

    @rule()
    def sweep(self) -> None:
        self.run(self.storage.expire_due(now=self.now))
        for checkout in self.checkouts:
            self._lapse(checkout)

    # Invariants.

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        with db_connect(self.db) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    @invariant()
    def money_is_conserved_and_never_negative(self) -> None:
        stored = dict(self._rows("SELECT id, balance FROM wallets"))
        wallets = [stored[wallet_id] for wallet_id in self.wallet_ids]
        merchant = sum(b for (b,) in self._rows("SELECT balance FROM merchant_balances"))
        assert wallets == self.balances
        assert min(wallets) >= 0
        assert sum(wallets) + merchant == WALLETS * OPENING

    @invariant()
    def one_outcome_per_checkout(self) -> None:
        stored = dict(self._rows("SELECT id, status FROM checkouts"))
        assert stored == {c.id: c.status for c in self.checkouts}
        payments = self._rows("SELECT checkout_id FROM payments")
        assert sorted(p for (p,) in payments) == sorted(
            c.id for c in self.checkouts if c.status == "paid"
        )

    @invariant()
    def one_event_per_final_status_with_gapless_seq(self) -> None:
        events = self._rows("SELECT seq, checkout_id, type FROM events ORDER BY seq")
        assert [s for s, _, _ in events] == list(range(1, len(events) + 1))
        assert len(events) == self.final_changes
        assert len({c for _, c, _ in events}) == len(events)
        for _, checkout_id, kind in events:
            assert kind == "checkout." + next(
                c.status for c in self.checkouts if c.id == checkout_id
            )


def _examples(count: int) -> settings:
    return settings(
        max_examples=count,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


CheckoutLife.TestCase.settings = _examples(60)
test_checkout_life = CheckoutLife.TestCase


class CheckoutLifeOnPostgres(CheckoutLife):
    """The same life on PostgreSQL, each example in a database of its own."""

    async def _open(self) -> SqlStorage:
        server, template = _postgres()
        self.database = create_database(server, template)
        self.db = server.dsn(self.database)
        return await asyncio.to_thread(PostgresStorage, self.db)

    def teardown(self) -> None:
        super().teardown()
        drop_database(_postgres()[0], self.database)


_server: list[tuple[PgServer, str]] = []


def _postgres() -> tuple[PgServer, str]:
    """A server for this module's examples and a migrated template database
    on it, made at the first example and gone when the test run ends (a
    state machine takes no fixtures)."""
    if not _server:
        running = running_server()
        server = running.__enter__()
        atexit.register(running.__exit__, None, None, None)
        template = create_database(server)
        migrate(server.dsn(template))
        atexit.register(drop_database, server, template)
        _server.append((server, template))
    return _server[0]


# Fewer examples: each makes a database (about 0.2 s).
CheckoutLifeOnPostgres.TestCase.settings = _examples(20)
test_checkout_life_on_postgresql = CheckoutLifeOnPostgres.TestCase
