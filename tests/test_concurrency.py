"""Many wallets racing for one code: the database lets exactly one win."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

import aiohttp

from psp_server.storage.sqlite import SqliteStorage
from tests.support.process import PspProcess, create_merchant

WALLETS = 50


async def test_fifty_wallets_pay_one_code_at_once_exactly_one_wins(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    key = create_merchant(db, "Race Shop")["api_key"]
    # Wallets are made by a second process writing the same database.
    storage = await asyncio.to_thread(SqliteStorage, str(db))
    wallets = [await storage.create_wallet(f"w{n}", "EUR", 10_000) for n in range(WALLETS)]
    await storage.close()

    server = PspProcess(db)
    try:
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

    print(f"\n{WALLETS} concurrent payments of one code: {Counter(results)}")
    assert Counter(results) == {(201, "succeeded"): 1, (409, "already_paid"): WALLETS - 1}
    with sqlite3.connect(db) as conn:
        balances = [b for (b,) in conn.execute("SELECT balance FROM wallets ORDER BY id")]
        payments = conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
        credited = conn.execute("SELECT balance FROM merchant_balances").fetchall()
    assert sorted(balances) == [10_000 - 2500] + [10_000] * (WALLETS - 1)
    assert payments == 1
    assert credited == [(2500,)]
