"""What PostgreSQL must do that SQLite's single writer does for free: two
processes (here two storages, each with its own pool) working on one
database at once keep every rule."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from psp_server.api.appkeys import RELAY
from psp_server.core.errors import Refused
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.records import Answer, Checkout, IdempotencyKey, Payment, Reply
from psp_server.storage.partitions import PARTITIONS
from psp_server.storage.postgres import PostgresStorage
from psp_server.storage.sqlite import SqliteStorage
from scan2pay_common.clock import MovableClock
from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.timefmt import now_ms
from scan2pay_common.topics import events_topic
from tests.support.broker import Mosquitto
from tests.support.ledger import assert_ledger_holds
from tests.support.mqtt import Subscriber
from tests.support.psp import Psp, code_of, start_psp, stop_psp

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


def render(outcome: tuple[Payment, Checkout] | Refused) -> Reply:
    if isinstance(outcome, Refused):
        return Reply(409, outcome.code.encode())
    payment, _ = outcome
    return Reply(201, payment.id.encode())


async def test_two_processes_paying_one_checkout_take_the_money_once(
    two: tuple[PostgresStorage, PostgresStorage], pg_dsn: str
) -> None:
    a, b = two
    shop, _ = await a.create_merchant("Shop")
    wallets = [(await a.create_wallet(f"w{n}", "EUR", 10_000))[0].id for n in range(8)]
    for round_ in range(10):
        checkout, _ = await a.create_checkout(
            shop.id, order(f"O-{round_}"), public_url=PUBLIC_URL, now=now_ms()
        )
        results = await asyncio.gather(
            *(
                (a if n % 2 else b).pay(wallet_id, checkout.code, now=now_ms())
                for n, wallet_id in enumerate(wallets)
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
    wallet, _ = await a.create_wallet("w", "EUR", 10_000)
    checkout, _ = await a.create_checkout(
        shop.id, order("K-1"), public_url=PUBLIC_URL, now=now_ms()
    )
    key = IdempotencyKey(wallet.id, "POST /v1/payments", "k-1", "hash")
    answer: Answer[tuple[Payment, Checkout]] = Answer(key, render)
    replies = await asyncio.gather(
        *(
            storage.pay_reply(answer, wallet.id, checkout.code, now=now_ms())
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
    from psp_server.core.errors import StorageError
    from tests.support.postgres import free_port

    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StorageError, match="cannot migrate PostgreSQL database"):
        await asyncio.to_thread(PostgresStorage, dsn)


# Several processes' relays on one database (psp_server/storage/partitions.py).


async def _held(psp: Psp) -> list[int]:
    relay = psp.server.app[RELAY]
    return await relay._partitions.held() or []


async def _events(listener: Subscriber, count: int | None = None) -> list[CheckoutEvent]:
    """``count`` events, or those that come within half a second; waited for
    off the loop, on which the PSPs run."""
    wait = listener.drain if count is None else lambda: listener.wait_for(count, 15)
    return [CheckoutEvent.from_json(m.payload) for m in await asyncio.to_thread(wait)]


async def _split(psps: list[Psp], timeout: float = 10.0) -> list[list[int]]:
    """Waits until the processes hold every partition between them, each
    some."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        shares = [await _held(p) for p in psps]
        if sorted(p for share in shares for p in share) == list(range(PARTITIONS)) and all(shares):
            return shares
        assert asyncio.get_running_loop().time() < deadline, shares
        await asyncio.sleep(0.2)


async def test_two_processes_relay_every_event_once_in_each_merchants_order(
    pg_dsn: str, broker: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    psps = [await start_psp(pg_dsn, mqtt_url=broker.url, sweep_interval=0.05) for _ in range(2)]
    try:
        shares = await _split(psps)
        assert all(shares), shares  # both relays have work
        shops = [await psps[0].merchant(f"Shop {n}") for n in range(6)]
        listener = subscribe("scan2pay/v1/m/+/events")
        wallet = await psps[0].wallet(balance=10**9)
        paid = 0
        for round_ in range(8):
            for n, shop in enumerate(shops):
                psp = psps[(round_ + n) % 2]  # each merchant is served by both
                checkout = await psp.checkout(shop, order_id=f"O-{round_}", amount=100)
                status, _ = await psp.pay(wallet, code_of(checkout))
                assert status == 201
                paid += 1
        events = [
            CheckoutEvent.from_json(m.payload)
            for m in await asyncio.to_thread(listener.wait_for, paid, 15)
        ]
        # A repeat would arrive now.
        events += [
            CheckoutEvent.from_json(m.payload) for m in await asyncio.to_thread(listener.drain)
        ]
        assert len({e.event_id for e in events}) == len(events) == paid
        for shop in shops:
            seqs = [e.seq for e in events if e.merchant_id == shop.id]
            assert seqs == list(range(1, 9)), (shop.id, seqs)
    finally:
        for psp in psps:
            await stop_psp(psp)


async def test_a_stopped_processes_merchants_are_taken_over(
    pg_dsn: str, broker: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    first = await start_psp(pg_dsn, mqtt_url=broker.url, sweep_interval=0.05)
    second = await start_psp(pg_dsn, mqtt_url=broker.url, sweep_interval=0.05)
    try:
        await _split([first, second])
        await stop_psp(first)
        assert await _split([second]) == [list(range(PARTITIONS))]
        shops = [await second.merchant(f"Shop {n}") for n in range(6)]
        listener = subscribe("scan2pay/v1/m/+/events")
        wallet = await second.wallet(balance=10**9)
        for shop in shops:
            checkout = await second.checkout(shop, amount=100)
            assert (await second.pay(wallet, code_of(checkout)))[0] == 201
        events = [
            CheckoutEvent.from_json(m.payload)
            for m in await asyncio.to_thread(listener.wait_for, 6, 15)
        ]
        assert {e.merchant_id for e in events} == {s.id for s in shops}
    finally:
        await stop_psp(second)


async def test_one_sweeper_at_a_time_expires_each_checkout_once(
    pg_dsn: str, broker: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    clock = MovableClock()  # one time for both, as NTP gives two machines
    psps = [
        await start_psp(pg_dsn, mqtt_url=broker.url, sweep_interval=0.02, clock=clock)
        for _ in range(2)
    ]
    try:
        shop = await psps[0].merchant()
        listener = subscribe(events_topic(shop.id))
        for n in range(20):
            last = await psps[n % 2].checkout(shop, order_id=f"E-{n}", expires_in=1)
        psps[0].pass_expiry(last)
        events = [
            CheckoutEvent.from_json(m.payload)
            for m in await asyncio.to_thread(listener.wait_for, 20, 15)
        ]
        events += [
            CheckoutEvent.from_json(m.payload) for m in await asyncio.to_thread(listener.drain)
        ]
        assert sorted(e.seq for e in events) == list(range(1, 21))
        assert {e.type for e in events} == {"checkout.expired"}
    finally:
        for psp in psps:
            await stop_psp(psp)


async def test_a_commit_in_one_process_wakes_the_relay_of_the_other(
    pg_dsn: str,
    broker: Mosquitto,
    subscribe: Callable[..., Subscriber],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle relay looks again only every REFRESH_SECONDS; made 60 s here,
    the event can arrive in time only through the NOTIFY of migration 0005."""
    from psp_server.outbox import relay

    monkeypatch.setattr(relay, "REFRESH_SECONDS", 60.0)
    psps = [await start_psp(pg_dsn, mqtt_url=broker.url, sweep_interval=60) for _ in range(2)]
    try:
        shares = await _split(psps)
        await asyncio.sleep(0.5)  # both relays idle in their long wait
        listener = subscribe("scan2pay/v1/m/+/events")
        with psycopg.connect(pg_dsn) as conn:
            for n in range(100):
                shop = await psps[0].merchant(f"Shop {n}")
                row = conn.execute(
                    "SELECT (hashtext(%s) & 2147483647) %% %s", (shop.id, PARTITIONS)
                ).fetchone()
                assert row is not None
                (partition,) = row
                if partition in shares[1]:
                    break
        wallet = await psps[0].wallet()
        checkout = await psps[0].checkout(shop, amount=100)
        assert (await psps[0].pay(wallet, code_of(checkout)))[0] == 201
        (event,) = await _events(listener, 1)
        assert event.merchant_id == shop.id
    finally:
        for psp in psps:
            await stop_psp(psp)
