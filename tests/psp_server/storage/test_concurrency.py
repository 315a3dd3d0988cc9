"""Many wallets racing for one code: the database lets exactly one win, on
SQLite's single writer and on PostgreSQL with two worker processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp

from psp_server.storage import open_storage
from tests.support.db import is_postgresql
from tests.support.ledger import assert_ledger_holds, rows
from tests.support.process import PspProcess, create_merchant
from tests.support.workers import WorkerLog

WALLETS = 50


async def test_fifty_wallets_pay_one_code_at_once_exactly_one_wins(db: str, tmp_path: Path) -> None:
    key = create_merchant(db, "Race Shop")["api_key"]
    # Wallets are made by a second process writing the same database.
    storage = await asyncio.to_thread(open_storage, db)
    wallets = [await storage.create_wallet(f"w{n}", "EUR", 10_000) for n in range(WALLETS)]
    await storage.close()

    workers = 2 if is_postgresql(db) else 1
    server = PspProcess(db, workers=workers, log_path=tmp_path / "psp.log")
    try:
        if workers > 1:
            # Both serving, so that the payments race across processes.
            WorkerLog(server).wait_for_workers(workers)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.url}/v1/checkouts",
                headers={"Authorization": f"Bearer {key}"},
                json={"order_id": "RACE-1", "amount": 2500, "currency": "EUR"},
            ) as response:
                assert response.status == 201
                code = (await response.json())["qr_url"].rsplit("/Q/", 1)[1]

            start = asyncio.Event()

            async def pay(token: str) -> tuple[int, str]:
                await start.wait()
                async with http.post(
                    f"{server.url}/v1/payments",
                    json={"code": code},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    body = await response.json()
                    return response.status, body.get("status") or body["error"]["code"]

            tasks = [asyncio.create_task(pay(token)) for _, token in wallets]
            await asyncio.sleep(0.05)
            start.set()
            results = await asyncio.gather(*tasks)
    finally:
        server.stop()

    print(f"\n{WALLETS} concurrent payments of one code ({workers} worker(s)): {Counter(results)}")
    assert Counter(results) == {(201, "succeeded"): 1, (409, "already_paid"): WALLETS - 1}
    balances = [b for (b,) in rows(db, "SELECT balance FROM wallets ORDER BY id")]
    assert sorted(balances) == [10_000 - 2500] + [10_000] * (WALLETS - 1)
    assert rows(db, "SELECT COUNT(*) FROM payments") == [(1,)]
    assert rows(db, "SELECT balance FROM merchant_balances") == [(2500,)]
    assert_ledger_holds(db)
