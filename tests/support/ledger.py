"""The ledger's invariants, read straight from the database: what every
test that moves money checks after each step."""

from __future__ import annotations

from typing import Any

from tests.support.db import connect


def rows(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connect(db) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def derived(db: str) -> dict[tuple[str, str], int]:
    """Every (account, currency)'s balance, summed from its entries."""
    return {
        (account, currency): total
        for account, currency, total in rows(
            db,
            "SELECT account, currency, CAST(SUM(amount) AS BIGINT) FROM ledger_entries"
            " GROUP BY 1, 2",
        )
    }


def assert_ledger_holds(db: str) -> dict[tuple[str, str], int]:
    """Money is conserved per currency and per transaction, every cached
    balance equals its derived one, no wallet is below zero, and every
    checkout's refunded total is the sum of its refunds. Returns the derived
    balances."""
    balances = derived(db)
    per_currency: dict[str, int] = {}
    for (_, currency), total in balances.items():
        per_currency[currency] = per_currency.get(currency, 0) + total
    assert all(total == 0 for total in per_currency.values()), per_currency
    unbalanced = rows(
        db,
        "SELECT transaction_id, currency, SUM(amount) FROM ledger_entries"
        " GROUP BY 1, 2 HAVING SUM(amount) <> 0",
    )
    assert unbalanced == [], unbalanced
    # A payment or a refund is exactly one debit and one credit.
    for table in ("payments", "refunds"):
        shapes = rows(
            db,
            "SELECT t.id, COUNT(e.id), SUM(CASE WHEN e.amount < 0 THEN 1 ELSE 0 END),"  # noqa: S608 - table from the tuple above
            f" MIN(e.amount), MAX(e.amount), t.amount"
            f" FROM {table} t LEFT JOIN ledger_entries e ON e.transaction_id = t.id GROUP BY t.id",
        )
        for txn, count, debits, low, high, amount in shapes:
            assert (count, debits, low, high) == (2, 1, -amount, amount), (table, txn)
    for wallet_id, currency, balance in rows(db, "SELECT id, currency, balance FROM wallets"):
        assert balance >= 0
        assert balances.get((f"wallet:{wallet_id}", currency), 0) == balance, wallet_id
    for merchant_id, currency, balance in rows(
        db, "SELECT merchant_id, currency, balance FROM merchant_balances"
    ):
        assert balances.get((f"merchant:{merchant_id}", currency), 0) == balance, merchant_id
    # And no ledger account is missing its cache.
    wallets = {f"wallet:{w}" for (w,) in rows(db, "SELECT id FROM wallets")}
    merchants = {
        (f"merchant:{m}", c)
        for m, c in rows(db, "SELECT merchant_id, currency FROM merchant_balances")
    }
    for account, currency in balances:
        if account.startswith("wallet:"):
            assert account in wallets
        elif account.startswith("merchant:"):
            assert (account, currency) in merchants
        else:
            assert account == f"funding:{currency}", account
    mismatched = rows(
        db,
        "SELECT c.id FROM checkouts c"
        " WHERE c.refunded_amount <> (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r"
        " WHERE r.checkout_id = c.id) OR c.refunded_amount > c.amount",
    )
    assert mismatched == [], mismatched
    return balances
