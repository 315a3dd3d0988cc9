"""A PSP server running in the test's event loop on a real loopback socket,
with helpers that make merchants and wallets the way the CLI does. Its clock
(``Psp.clock``) is the system's until the test moves it on: a test steps over
an expiry rather than wait for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from psp_server.runtime.config import Settings
from psp_server.runtime.server import RunningServer, start_server
from psp_server.storage import Storage
from scan2pay_common.clock import MovableClock
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.timefmt import from_rfc3339
from tests.support.db import connect as db_connect
from tests.support.db import is_postgresql, migrated_sqlite


@dataclass
class Merchant:
    id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Wallet:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Psp:
    def __init__(
        self, server: RunningServer, http: aiohttp.ClientSession, clock: MovableClock
    ) -> None:
        self.server = server
        self.clock = clock
        self.http = http
        self.url = server.url

    @property
    def storage(self) -> Storage:
        from psp_server.api.appkeys import STORAGE

        return self.server.app[STORAGE]

    async def merchant(self, name: str = "Test Shop") -> Merchant:
        merchant, key = await self.storage.create_merchant(name)
        return Merchant(merchant.id, key)

    async def wallet(self, currency: str = "EUR", balance: int = 10_000) -> Wallet:
        wallet, token = await self.storage.create_wallet("test wallet", currency, balance)
        return Wallet(wallet.id, token)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, self.url + path, json=json, data=data, headers=headers
        ) as response:
            body = await response.read()
            if response.content_type == "application/json":
                import json as _json

                return response.status, _json.loads(body)
            return response.status, body.decode()

    async def checkout(self, merchant: Merchant, **fields: Any) -> dict[str, Any]:
        body = {"order_id": "A-1001", "amount": 1234, "currency": "EUR", **fields}
        status, answer = await self.call("POST", "/v1/checkouts", json=body, headers=merchant.auth)
        assert status == 201, answer
        created: dict[str, Any] = answer
        return created

    def pass_expiry(self, checkout: dict[str, Any]) -> None:
        """Moves the PSP's clock on to the checkout's ``expires_at``, from
        which on it is expired."""
        self.clock.advance_to(from_rfc3339(checkout["expires_at"]))

    async def balance(self, wallet: Wallet) -> int:
        """The wallet's balance as the storage has it."""
        found = await self.storage.get_wallet(wallet.id)
        if found is None:
            raise LookupError(f"no wallet {wallet.id}")
        return found.balance

    async def relay_connected(self) -> bool:
        """Whether the PSP says its event relay is connected to the broker."""
        _, health = await self.call("GET", "/healthz")
        return bool(health["mqtt"] == "connected")

    async def outbox_drained(self) -> bool:
        """Whether every event written has been published."""
        return not await self.storage.unpublished_events()

    async def pay(self, wallet: Wallet, code: str) -> tuple[int, Any]:
        return await self.call("POST", "/v1/payments", json={"code": code}, headers=wallet.auth)


def code_of(checkout: dict[str, Any]) -> str:
    return str(checkout["qr_url"]).rsplit("/Q/", 1)[1]


def count_rows(psp: Psp, table: str) -> int:
    """The rows of ``table``, read behind the server's back."""
    with db_connect(psp.server.settings.db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - a table the test names


def _with_schema(db: str) -> None:
    """A new SQLite file gets the schema the server would make, copied."""
    if not is_postgresql(db) and not Path(db).exists():
        migrated_sqlite(db)


async def start_psp(
    db: str,
    *,
    mqtt_url: str | None = None,
    webhook_resolver: AbstractResolver | None = None,
    clock: MovableClock | None = None,
    **settings: Any,
) -> Psp:
    """``webhook_resolver`` stands in for the system's resolver of webhook
    endpoints' names (tests/support/dns.py); the PSP's destination policy
    still checks what it answers. ``clock``: one the test shares between
    PSPs; by default each has its own."""
    clock = clock or MovableClock()
    _with_schema(db)
    mqtt = MqttTarget.parse(mqtt_url) if mqtt_url else None
    server = await start_server(
        Settings(host="127.0.0.1", port=0, db=db, mqtt=mqtt, **settings),
        webhook_resolver=webhook_resolver,
        clock=clock,
    )
    http = aiohttp.ClientSession()
    return Psp(server, http, clock)


async def stop_psp(psp: Psp) -> None:
    await psp.http.close()
    await psp.server.stop()
