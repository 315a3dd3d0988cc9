"""What PostgreSQL must do that SQLite's single writer does for free: two
processes (here two storages, each with its own pool) working on one
database at once keep every rule."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from psp_server.errors import Refused
from psp_server.payloads import CheckoutRequest
from psp_server.storage.postgres import PostgresStorage
from psp_server.storage.records import Answer, IdempotencyKey, Reply
from psp_server.storage.sqlite import SqliteStorage
from scan2pay_common.timefmt import now_ms
from tests.support.ledger import assert_ledger_holds

PUBLIC_URL = "HTTP://127.0.0.1:8080"


@pytest.fixture
async def two(pg_dsn: str) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    first = await asyncio.to_thread(PostgresStorage, pg_dsn)
    second = await asyncio.to_thread(PostgresStorage, pg_dsn)
    yield first, second
    await first.close()
    await second.close()


def order(order_id: str, amount: int = 500) -> CheckoutRequest:
    return CheckoutRequest.parse(
        {"order_id": order_id, "amount": amount, "currency": "EUR"}, max_amount=10**9
    )


def render(outcome: object) -> Reply:
    if isinstance(outcome, Refused):
        return Reply(409, outcome.code.encode())
    payment, _ = outcome  # type: ignore[misc]
    return Reply(201, payment.id.encode())


async def test_two_processes_paying_one_checkout_take_the_money_once(
    two: tuple[PostgresStorage, PostgresStorage], pg_dsn: str
) -> None:
    a, b = two
    shop, _ = await a.create_merchant("Shop")
    wallets = [(await a.create_wallet(f"w{n}", "EUR", 10_000))[1] for n in range(8)]
    for round_ in range(10):
        checkout, _ = await a.create_checkout(
            shop.id, order(f"O-{round_}"), public_url=PUBLIC_URL, now=now_ms()
        )
        results = await asyncio.gather(
            *(
                (a if n % 2 else b).pay(token, checkout.code, now=now_ms())
                for n, token in enumerate(wallets)
            ),
            return_exceptions=True,
        )
        paid = [r for r in results if not isinstance(r, BaseException)]
        refusals = {r.code for r in results if isinstance(r, Refused)}
        assert len(paid) == 1, results
        assert refusals == {"already_paid"}, results
    assert_ledger_holds(pg_dsn)
    assert len(await a.events_after(shop.id, 0, limit=100)) == 10


async def test_one_idempotency_key_in_two_processes_pays_once_and_replays(
    two: tuple[PostgresStorage, PostgresStorage], pg_dsn: str
) -> None:
    a, b = two
    shop, _ = await a.create_merchant("Shop")
    wallet, token = await a.create_wallet("w", "EUR", 10_000)
    checkout, _ = await a.create_checkout(
        shop.id, order("K-1"), public_url=PUBLIC_URL, now=now_ms()
    )
    key = IdempotencyKey(wallet.id, "POST /v1/payments", "k-1", "hash")
    answer: Answer[object] = Answer(key, render)
    replies = await asyncio.gather(
        *(
            storage.pay_reply(answer, token, checkout.code, now=now_ms())  # type: ignore[arg-type]
            for storage in (a, b, a, b)
        )
    )
    assert {r.status for r in replies} == {201}
    assert len({r.body for r in replies}) == 1
    assert sum(1 for r in replies if not r.replayed) == 1
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT COUNT(*) FROM payments").fetchone() == (1,)
    assert_ledger_holds(pg_dsn)


async def test_both_backends_build_the_same_schema(pg_dsn: str, tmp_path: Path) -> None:
    sqlite_storage = await asyncio.to_thread(SqliteStorage, str(tmp_path / "psp.db"))
    await sqlite_storage.close()
    pg_storage = await asyncio.to_thread(PostgresStorage, pg_dsn)
    await pg_storage.close()
    with sqlite3.connect(tmp_path / "psp.db") as lite:
        tables = [
            t
            for (t,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not t.startswith(("sqlite_", "_yoyo", "yoyo"))
        ]
        on_sqlite = {t: {row[1] for row in lite.execute(f"PRAGMA table_info({t})")} for t in tables}
    with psycopg.connect(pg_dsn) as pg:
        rows = pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ).fetchall()
    on_postgresql: dict[str, set[str]] = {}
    for table, column in rows:
        if not table.startswith(("_yoyo", "yoyo")):
            on_postgresql.setdefault(table, set()).add(column)
    assert on_postgresql == on_sqlite
    assert "checkouts" in on_sqlite


async def test_a_server_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    from psp_server.errors import StorageError
    from tests.support.postgres import free_port

    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StorageError, match="cannot migrate PostgreSQL database"):
        await asyncio.to_thread(PostgresStorage, dsn)
