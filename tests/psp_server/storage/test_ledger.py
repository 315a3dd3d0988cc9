"""The double-entry ledger: every movement of money is entries that sum to
zero per currency, and every cached balance equals the sum of its entries,
checked after every operation, refused ones included."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest

from psp_server.storage.sqlite import SqliteStorage
from tests.support.db import IntegrityError, sqlite_at_migration
from tests.support.db import connect as db_connect
from tests.support.ledger import assert_ledger_holds, rows
from tests.support.psp import Merchant, Psp, code_of


def db_of(psp: Psp) -> str:
    return psp.server.settings.db


async def test_an_opening_balance_comes_from_the_funding_account(psp: Psp) -> None:
    rich = await psp.wallet("EUR", 5000)
    await psp.wallet("EUR", 2500)
    await psp.wallet("JPY", 700)
    empty = await psp.wallet("EUR", 0)
    balances = assert_ledger_holds(db_of(psp))
    assert balances[("funding:EUR", "EUR")] == -7500
    assert balances[("funding:JPY", "JPY")] == -700
    assert balances[(f"wallet:{rich.id}", "EUR")] == 5000
    assert (f"wallet:{empty.id}", "EUR") not in balances  # nothing moved, nothing written
    assert await psp.storage.ledger_balances() == balances


async def test_a_payment_is_one_debit_and_one_credit(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet("EUR", 5000)
    checkout = await psp.checkout(shop, amount=1234)
    status, payment = await psp.pay(wallet, code_of(checkout))
    assert status == 201
    entries = rows(
        db_of(psp),
        "SELECT account, currency, amount FROM ledger_entries WHERE transaction_id = ?"
        " ORDER BY amount",
        payment["id"],
    )
    assert entries == [(f"wallet:{wallet.id}", "EUR", -1234), (f"merchant:{shop.id}", "EUR", 1234)]
    balances = assert_ledger_holds(db_of(psp))
    assert balances[(f"wallet:{wallet.id}", "EUR")] == 5000 - 1234
    assert balances[(f"merchant:{shop.id}", "EUR")] == 1234


async def test_refused_payments_write_no_entries(psp: Psp, shop: Merchant) -> None:
    poor = await psp.wallet("EUR", 10)
    yen = await psp.wallet("JPY", 10_000)
    payer = await psp.wallet("EUR", 10_000)
    checkout = await psp.checkout(shop, amount=100)
    cancelled = await psp.checkout(shop, order_id="C")
    await psp.call("POST", f"/v1/checkouts/{cancelled['id']}/cancel", headers=shop.auth)
    before = rows(db_of(psp), "SELECT COUNT(*) FROM ledger_entries")
    for wallet, code, expected in [
        (poor, code_of(checkout), 402),
        (yen, code_of(checkout), 422),
        (payer, code_of(cancelled), 410),
        (payer, "A" * 32, 404),
    ]:
        assert (await psp.pay(wallet, code))[0] == expected
        assert rows(db_of(psp), "SELECT COUNT(*) FROM ledger_entries") == before
        assert_ledger_holds(db_of(psp))
    assert (await psp.pay(payer, code_of(checkout)))[0] == 201
    assert (await psp.pay(payer, code_of(checkout)))[0] == 409
    assert_ledger_holds(db_of(psp))


async def test_a_refund_moves_money_back_in_the_ledger(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet("EUR", 5000)
    checkout = await psp.checkout(shop, amount=1234)
    await psp.pay(wallet, code_of(checkout))
    status, refund = await psp.call(
        "POST",
        f"/v1/checkouts/{checkout['id']}/refunds",
        json={"amount": 234},
        headers=shop.auth,
    )
    assert status == 201
    entries = rows(
        db_of(psp),
        "SELECT account, amount FROM ledger_entries WHERE transaction_id = ? ORDER BY amount",
        refund["id"],
    )
    assert entries == [(f"merchant:{shop.id}", -234), (f"wallet:{wallet.id}", 234)]
    balances = assert_ledger_holds(db_of(psp))
    assert balances[(f"merchant:{shop.id}", "EUR")] == 1000


async def test_cache_equals_ledger_after_every_operation(psp: Psp) -> None:
    """A random mix of wallets, payments (some refused), cancels and refunds
    in three currencies, with the whole ledger checked after each step."""
    rng = random.Random(20261124)  # noqa: S311 - seeded test data, nothing secret
    shops = [await psp.merchant(f"Shop {n}") for n in range(2)]
    currencies = ["EUR", "JPY", "KWD"]
    wallets = [await psp.wallet(c, rng.randint(0, 3000)) for c in currencies for _ in range(2)]
    currency_of = {w.id: currencies[n // 2] for n, w in enumerate(wallets)}
    paid: list[tuple[Merchant, str]] = []
    outcomes: set[tuple[str, int]] = set()
    for step in range(60):
        action = rng.choice(["pay", "pay", "refund", "cancel"])
        shop = rng.choice(shops)
        if action == "refund" and paid:
            owner, checkout_id = rng.choice(paid)
            status, _ = await psp.call(
                "POST",
                f"/v1/checkouts/{checkout_id}/refunds",
                json={"amount": rng.randint(1, 800)},
                headers=owner.auth,
            )
        else:
            currency = rng.choice(currencies)
            checkout = await psp.checkout(
                shop, order_id=f"S-{step}", currency=currency, amount=rng.randint(1, 1500)
            )
            if action == "cancel":
                status, _ = await psp.call(
                    "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth
                )
            else:
                wallet = rng.choice(wallets)
                status, _ = await psp.pay(wallet, code_of(checkout))
                if status == 201:
                    paid.append((shop, checkout["id"]))
                    assert currency_of[wallet.id] == currency
        outcomes.add((action if action != "refund" or paid else "pay", status))
        assert_ledger_holds(db_of(psp))
    # The mix reached success and refusal alike.
    assert {("pay", 201), ("pay", 402), ("pay", 422), ("refund", 201), ("cancel", 200)} <= outcomes
    derived = assert_ledger_holds(db_of(psp))
    assert await psp.storage.ledger_balances() == derived
    for wallet in wallets:
        cached = await psp.storage.get_wallet(wallet.id)
        assert cached is not None
        assert derived.get((f"wallet:{wallet.id}", cached.currency), 0) == cached.balance
    for shop in shops:
        for currency, cached_balance in (await psp.storage.merchant_balances(shop.id)).items():
            assert derived[(f"merchant:{shop.id}", currency)] == cached_balance


async def test_a_wallet_balance_can_never_go_below_zero(psp: Psp) -> None:
    wallet = await psp.wallet("EUR", 10)
    with (
        db_connect(db_of(psp)) as conn,
        pytest.raises(IntegrityError, match=r"(?i)check"),
    ):
        conn.execute("UPDATE wallets SET balance = -1 WHERE id = ?", (wallet.id,))


# A database made before the ledger.


async def test_the_migration_writes_the_ledger_of_existing_money(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await asyncio.to_thread(sqlite_at_migration, path, "0001_initial")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO merchants (id, name, api_key_hash, last_event_seq, created_at)"
            " VALUES ('mer_1', 'Old Shop', 'h', 1, 1)"
        )
        # Ann started with 50.00 and paid 12.34; Bob started with 0; Cy with 7 JPY.
        conn.executemany(
            "INSERT INTO wallets (id, name, token_hash, currency, balance, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("wal_ann", "Ann", "t1", "EUR", 5000 - 1234, 2),
                ("wal_bob", "Bob", "t2", "EUR", 0, 3),
                ("wal_cy", "Cy", "t3", "JPY", 7, 4),
            ],
        )
        conn.execute(
            "INSERT INTO checkouts (id, merchant_id, order_id, request_hash, amount, currency,"
            " code, qr_url, status, created_at, expires_at, updated_at) VALUES"
            " ('co_1', 'mer_1', 'A-1', 'x', 1234, 'EUR', 'CODE', 'HTTP://X/Q/CODE', 'paid',"
            " 5, 99, 6)"
        )
        conn.execute(
            "INSERT INTO payments (id, checkout_id, wallet_id, amount, currency, created_at)"
            " VALUES ('pay_1', 'co_1', 'wal_ann', 1234, 'EUR', 6)"
        )
        conn.execute("INSERT INTO merchant_balances VALUES ('mer_1', 'EUR', 1234)")

    storage = await asyncio.to_thread(SqliteStorage, str(path))  # migrates
    try:
        derived = await storage.ledger_balances()
        merchant = await storage.merchant_balances("mer_1")
    finally:
        await storage.close()
    assert derived == {
        ("funding:EUR", "EUR"): -5000,
        ("funding:JPY", "JPY"): -7,
        ("wallet:wal_ann", "EUR"): 5000 - 1234,
        ("wallet:wal_cy", "JPY"): 7,
        ("merchant:mer_1", "EUR"): 1234,
    }
    assert merchant == {"EUR": 1234}
    assert_ledger_holds(str(path))
    assert rows(str(path), "SELECT refunded_amount FROM checkouts") == [(0,)]
