"""Merchant webhooks end to end: a real PSP posts to real HTTP receivers on
loopback; signatures are checked with the helper and recomputed by hand;
retries, a dead endpoint, a SIGKILLed server, redelivery and the merchant
boundary are each exercised against the running server. On PostgreSQL: an
event committed after a later one is still found, and two PSPs on one
database deliver each event once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import aiohttp
import psycopg
import pytest
from aiohttp import web

from psp_server.api.appkeys import PARTITION_LEASES
from psp_server.core.payloads import CheckoutRequest
from psp_server.outbox.wake import WakeEvent
from psp_server.runtime.config import parse_networks
from psp_server.storage import open_storage
from psp_server.storage.partitions import PARTITIONS
from psp_server.storage.postgres import PostgresStorage
from psp_server.storage.sqlite import SqliteStorage
from psp_server.webhooks import signing
from psp_server.webhooks.retry import RetryPolicy
from psp_server.webhooks.store import Scan, WebhookStore
from scan2pay_common.timefmt import from_rfc3339, now_ms
from tests.support.db import connect as db_connect
from tests.support.db import sqlite_at_migration
from tests.support.process import PspProcess
from tests.support.psp import Merchant, Psp, Wallet, code_of, start_psp, stop_psp
from tests.support.webhooks import log_of, log_until


class Retries(TypedDict):
    webhook_retry_base: float
    webhook_retry_max: float
    webhook_timeout: float


# Retries fast enough for a test; the defaults are 10 s, 1 h and 24 h.
FAST: Retries = {"webhook_retry_base": 0.2, "webhook_retry_max": 5.0, "webhook_timeout": 5.0}
# The receivers listen on 127.0.0.1, which webhooks may reach only when the
# operator allows it (tests/psp_server/webhooks/test_webhook_destinations.py).
LOOPBACK: dict[str, Any] = {"webhook_allow_networks": parse_networks("127.0.0.0/8")}


# A receiver: a real aiohttp server that records what it is sent.


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[int] = []  # the next answers, in order; then `default`
        self.default = 200
        self.stall = False  # hold each request until stop()
        self.delay = 0.0  # seconds before each answer
        self._arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(time.monotonic(), dict(request.headers), body))
        self._arrived.set()
        if self.stall:
            await self._release.wait()
        await asyncio.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else self.default
        return web.Response(status=status, text="thanks" if status < 300 else "no")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook?shop=1"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            self._arrived.clear()
            if len(self.requests) >= count:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.requests[:count]


MakeReceiver = Callable[[], Awaitable[Receiver]]
MakePsp = Callable[..., Awaitable[Psp]]


@pytest.fixture
async def receiver() -> AsyncIterator[MakeReceiver]:
    made: list[Receiver] = []

    async def make() -> Receiver:
        one = Receiver()
        await one.start()
        made.append(one)
        return one

    yield make
    for one in made:
        await one.stop()


@pytest.fixture
async def make_psp(db: str) -> AsyncIterator[MakePsp]:
    """A PSP with the test's settings, on each backend in turn (``db``)."""
    made: list[Psp] = []

    async def make(**settings: Any) -> Psp:
        server = await start_psp(db, sweep_interval=0.05, **settings)
        made.append(server)
        return server

    yield make
    for server in made:
        await stop_psp(server)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Everything is logged, so that "the secret is never logged" means something.
    caplog.set_level(logging.DEBUG)


# Helpers.


async def register(psp: Psp, merchant: Merchant, url: str) -> dict[str, Any]:
    status, body = await psp.call("POST", "/v1/webhooks", json={"url": url}, headers=merchant.auth)
    assert status == 201, body
    webhook: dict[str, Any] = body
    return webhook


async def pay_one(psp: Psp, merchant: Merchant, wallet: Wallet, order_id: str) -> dict[str, Any]:
    checkout = await psp.checkout(merchant, order_id=order_id)
    status, answer = await psp.pay(wallet, code_of(checkout))
    assert status == 201, answer
    return checkout


def stored_payload(db: str | Path, checkout_id: str) -> bytes:
    """The event's JSON exactly as the PSP wrote it (what MQTT gets too)."""
    with db_connect(str(db)) as conn:
        row = conn.execute(
            "SELECT payload FROM events WHERE checkout_id = ? AND type = 'checkout.paid'",
            (checkout_id,),
        ).fetchone()
    assert row is not None
    return str(row[0]).encode()


def assert_signed(received: Received, secret: str) -> None:
    """The helper accepts the signature, and so does a computation by hand."""
    header = received.headers["Scan2pay-Signature"]
    assert signing.verify(secret, header, received.body)
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert sorted(fields) == ["t", "v1"]
    assert abs(int(fields["t"]) - time.time()) < 60
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


def assert_never_logged(caplog: pytest.LogCaptureFixture, secret: str) -> None:
    assert caplog.records, "nothing was logged, so nothing was checked"
    assert secret not in caplog.text
    assert secret[len("whsec_") :] not in caplog.text


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/hook"


# The signature and the schedule on their own.


def test_sign_and_verify() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(secret) == len("whsec_") + 43
    body = b'{"event_id":"evt_1","seq":1}'
    now = 1_764_000_000
    header = signing.sign(secret, now, body)
    assert header.startswith(f"t={now},v1=")
    assert signing.verify(secret, header, body, now=now)
    assert signing.verify(secret, header, body, now=now + 299)
    assert signing.verify(secret, header, body, now=now - 299)
    assert not signing.verify(secret, header, body, now=now + 301)  # a replay, too old
    assert not signing.verify(secret, header, body, tolerance=10, now=now + 11)
    assert not signing.verify(secret, header, body + b" ", now=now)
    assert not signing.verify(signing.new_secret(), header, body, now=now)
    other = signing.sign(signing.new_secret(), now, body).split(",")[1]
    # Several v1 entries (a secret being rolled): one good one is enough.
    assert signing.verify(secret, f"{header},{other}", body, now=now)
    assert signing.verify(secret, f"{header}, v0=abc", body, now=now)
    for bad in (
        None,
        "",
        "garbage",
        f"t={now}",
        header.split(",")[1],
        f"t=12ab,{header.split(',')[1]}",
        f"t={now},t={now},{header.split(',')[1]}",
        f"t={now},v1=é",
        other,
    ):
        assert not signing.verify(secret, bad, body, now=now), bad


def test_retry_delays_grow_to_the_cap() -> None:
    policy = RetryPolicy(base=10, maximum=3600, window=86_400)
    rng = random.Random(7)  # noqa: S311 - seeded test data, nothing secret
    delays = [policy.delay(n, rng) for n in range(1, 15)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(3600, 10 * 2 ** (n - 1))
        assert 0.8 * ceiling <= delay <= ceiling
    assert delays[:9] == sorted(delays[:9])
    assert policy.delay(10_000, rng) <= 3600
    # Failing all day: about 30 attempts before the window closes.
    at, attempts = 0.0, 1
    while at < policy.window:
        at += policy.delay(attempts, rng)
        attempts += 1
    assert 25 <= attempts <= 40


async def test_wake_reaches_every_listener() -> None:
    wake, mine = WakeEvent(), asyncio.Event()
    wake.add_listener(mine)
    wake.set()
    wake.clear()  # the relay clears its own flag...
    assert mine.is_set()  # ...and the dispatcher still hears the wake-up
    mine.clear()
    wake.remove_listener(mine)
    wake.set()
    assert wake.is_set()
    assert not mine.is_set()


# Against a running PSP.


async def test_event_is_posted_exactly_and_signed(
    make_psp: MakePsp, receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    psp = await make_psp(**FAST, **LOOPBACK)
    hook = await receiver()
    shop, other = await psp.merchant(), await psp.merchant("Other Shop")
    wallet = await psp.wallet()
    await pay_one(psp, shop, wallet, "BEFORE")  # written before the webhook: not sent

    webhook = await register(psp, shop, hook.url)
    assert webhook["id"].startswith("wh_")
    assert webhook["url"] == hook.url
    assert webhook["enabled"] is True
    assert webhook["secret"].startswith("whsec_")
    secret = webhook["secret"]
    await pay_one(psp, other, wallet, "OTHER")  # another merchant's: not sent
    paid_at = time.monotonic()
    checkout = await pay_one(psp, shop, wallet, "AFTER")

    (received,) = await hook.wait_for(1)
    # The payment wakes the dispatcher: it does not wait for its next poll (1 s).
    assert received.at - paid_at < 0.5
    assert received.body == stored_payload(psp.server.settings.db, checkout["id"])
    assert received.headers["Content-Type"] == "application/json"
    assert_signed(received, secret)
    event = received.event
    assert (event["type"], event["merchant_id"]) == ("checkout.paid", shop.id)
    assert event["checkout"]["id"] == checkout["id"]
    assert event["checkout"]["status"] == "paid"
    assert event["seq"] == 2  # BEFORE was the merchant's first event
    assert received.headers["Scan2pay-Event-Id"] == event["event_id"]

    (delivery,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] != "pending")
    assert delivery == {
        "event_id": event["event_id"],
        "seq": 2,
        "type": "checkout.paid",
        "status": "delivered",
        "attempts": 1,
        "last_attempt_at": delivery["last_attempt_at"],
        "last_status_code": 200,
        "last_error": None,
        "next_attempt_at": None,
        "delivered_at": delivery["delivered_at"],
        "created_at": delivery["created_at"],
    }
    assert delivery["created_at"] <= delivery["last_attempt_at"] <= delivery["delivered_at"]

    status, listed = await psp.call("GET", "/v1/webhooks", headers=shop.auth)
    assert status == 200
    assert listed == {
        "webhooks": [
            {
                "id": webhook["id"],
                "url": hook.url,
                "created_at": webhook["created_at"],
                "enabled": True,
            }
        ]
    }
    await asyncio.sleep(0.3)
    assert len(hook.requests) == 1  # nothing else came: not BEFORE, not OTHER, no repeat
    assert_never_logged(caplog, secret)


async def test_deliveries_carry_the_psps_time(make_psp: MakePsp, receiver: MakeReceiver) -> None:
    """The signature's timestamp and the delivery log are the PSP's clock's,
    an hour ahead of the system's here."""
    psp = await make_psp(**FAST, **LOOPBACK)
    psp.clock.advance(3_600_000)
    hook = await receiver()
    shop = await psp.merchant()
    webhook = await register(psp, shop, hook.url)
    await pay_one(psp, shop, await psp.wallet(), "LATER")
    (received,) = await hook.wait_for(1)
    now = psp.clock.now_ms()
    header = received.headers["Scan2pay-Signature"]
    assert signing.verify(webhook["secret"], header, received.body, now=now // 1000)
    assert not signing.verify(webhook["secret"], header, received.body)  # the system's: an hour off
    (delivery,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] != "pending")
    for field in ("created_at", "last_attempt_at", "delivered_at"):
        assert abs(from_rfc3339(delivery[field]) - now) < 60_000, field


async def test_failing_receiver_is_retried_with_growing_delays(
    make_psp: MakePsp, receiver: MakeReceiver
) -> None:
    psp = await make_psp(**{**FAST, "webhook_retry_base": 0.4}, **LOOPBACK)
    hook = await receiver()
    hook.answers = [500, 500]
    shop = await psp.merchant()
    webhook = await register(psp, shop, hook.url)
    await pay_one(psp, shop, await psp.wallet(), "R-1")

    await hook.wait_for(1)
    (failed,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["attempts"] == 1)
    assert failed["status"] == "pending"
    assert failed["last_status_code"] == 500
    assert failed["last_error"] == "http_5xx"
    assert failed["next_attempt_at"] is not None
    assert failed["delivered_at"] is None

    first, second, third = await hook.wait_for(3)
    gaps = [second.at - first.at, third.at - second.at]
    # 0.4 s then 0.8 s, each less up to 20 % jitter.
    assert 0.8 * 0.4 - 0.02 <= gaps[0] < gaps[1], gaps
    assert gaps[1] >= 0.8 * 0.8 - 0.02, gaps
    assert first.body == second.body == third.body
    assert len({r.headers["Scan2pay-Event-Id"] for r in (first, second, third)}) == 1
    for received in (first, second, third):
        assert_signed(received, webhook["secret"])

    (done,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] == "delivered")
    assert (done["attempts"], done["last_status_code"], done["last_error"]) == (3, 200, None)
    assert done["next_attempt_at"] is None
    await asyncio.sleep(0.4)
    assert len(hook.requests) == 3


async def test_gives_up_after_the_window_and_redelivers_by_hand(
    make_psp: MakePsp, receiver: MakeReceiver
) -> None:
    psp = await make_psp(
        webhook_retry_base=0.1, webhook_retry_max=0.2, webhook_retry_window=0.7, **LOOPBACK
    )
    hook = await receiver()
    hook.default = 503
    shop = await psp.merchant()
    webhook = await register(psp, shop, hook.url)
    await pay_one(psp, shop, await psp.wallet(), "W-1")

    (failed,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] == "failed")
    assert failed["attempts"] >= 3
    assert failed["last_status_code"] == 503
    assert failed["last_error"] == "http_5xx"
    assert failed["next_attempt_at"] is None
    assert failed["delivered_at"] is None
    tried = len(hook.requests)
    assert tried == failed["attempts"]
    span = hook.requests[-1].at - hook.requests[0].at
    assert span >= 0.7 - 0.05  # the last attempt came after the window
    await asyncio.sleep(0.5)
    assert len(hook.requests) == tried  # given up: no more attempts

    hook.default = 200
    event_id = failed["event_id"]
    path = f"/v1/webhooks/{webhook['id']}/deliveries/{event_id}/redeliver"
    status, queued = await psp.call("POST", path, headers=shop.auth)
    assert status == 202, queued
    assert queued["event_id"] == event_id
    assert queued["next_attempt_at"] is not None
    again = (await hook.wait_for(tried + 1))[-1]
    assert again.body == hook.requests[0].body
    assert_signed(again, webhook["secret"])
    (done,) = await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] == "delivered")
    assert done["attempts"] == tried + 1
    assert done["delivered_at"] is not None

    # A delivered event can be sent again too: the receiver dedupes by event_id.
    status, _ = await psp.call("POST", path, headers=shop.auth)
    assert status == 202
    repeat = (await hook.wait_for(tried + 2))[-1]
    assert repeat.body == again.body
    await log_until(psp, shop, webhook["id"], lambda d: d[0]["attempts"] == tried + 2)
    await asyncio.sleep(0.3)
    assert len(hook.requests) == tried + 2  # one attempt per redelivery, no retries


async def test_a_dead_endpoint_does_not_delay_a_healthy_one(
    make_psp: MakePsp, receiver: MakeReceiver
) -> None:
    psp = await make_psp(**FAST, **LOOPBACK)
    black_hole, healthy = await receiver(), await receiver()
    black_hole.stall = True  # accepts, then never answers
    shop = await psp.merchant()
    refused = await register(psp, shop, closed_port_url())
    stalled = await register(psp, shop, black_hole.url)
    await register(psp, shop, healthy.url)
    wallet = await psp.wallet()

    started = time.monotonic()
    for n in range(3):
        await pay_one(psp, shop, wallet, f"D-{n}")
    received = await healthy.wait_for(3, timeout=5)
    assert received[-1].at - started < 1.5
    assert [r.event["seq"] for r in received] == [1, 2, 3]  # in order, as written
    assert len(black_hole.requests) == 1  # still waiting on its first

    log = await log_until(
        psp, shop, refused["id"], lambda d: len(d) == 3 and all(x["attempts"] for x in d)
    )
    for delivery in log:
        assert delivery["status"] == "pending"
        assert delivery["last_status_code"] is None
        assert delivery["last_error"] == "connection_refused"
        assert delivery["next_attempt_at"] is not None
    assert all(d["attempts"] == 0 for d in await log_of(psp, shop, stalled["id"]))


async def test_delivery_survives_a_killed_server(tmp_path: Path, receiver: MakeReceiver) -> None:
    db = tmp_path / "psp.db"
    storage = await asyncio.to_thread(open_storage, str(db))
    merchant, key = await storage.create_merchant("Restart Shop")
    _, token = await storage.create_wallet("w", "EUR", 10_000)
    await storage.close()
    shop = Merchant(merchant.id, key)
    hook = await receiver()
    hook.stall = True
    flags = (
        *("--webhook-retry-base", "0.2", "--webhook-timeout", "30", "--log-level", "DEBUG"),
        *("--webhook-allow-networks", "127.0.0.0/8"),
    )

    first = await asyncio.to_thread(PspProcess, db, extra=flags)
    second: PspProcess | None = None
    try:
        async with aiohttp.ClientSession(first.url) as http:
            async with http.post(
                "/v1/webhooks", json={"url": hook.url}, headers=shop.auth
            ) as response:
                assert response.status == 201
                webhook = await response.json()
            async with http.post(
                "/v1/checkouts",
                json={"order_id": "K-1", "amount": 1234, "currency": "EUR"},
                headers=shop.auth,
            ) as response:
                checkout = await response.json()
            async with http.post(
                "/v1/payments",
                json={"code": code_of(checkout)},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 201
        (cut_off,) = await hook.wait_for(1)
        # The event is on disk and the receiver holds the request: kill -9.
        await asyncio.to_thread(first.stop, signal.SIGKILL)
        assert first.process.returncode == -signal.SIGKILL

        hook.stall = False
        second = await asyncio.to_thread(PspProcess, db, extra=flags)
        delivered = (await hook.wait_for(2))[1]
        assert delivered.body == cut_off.body == stored_payload(db, checkout["id"])
        assert_signed(delivered, webhook["secret"])
        async with aiohttp.ClientSession(second.url) as http:
            path = f"/v1/webhooks/{webhook['id']}/deliveries"
            for _ in range(500):
                async with http.get(path, headers=shop.auth) as response:
                    (delivery,) = (await response.json())["deliveries"]
                if delivery["status"] == "delivered":
                    break
                await asyncio.sleep(0.01)
        # The attempt the kill cut off left no outcome; the one after it did.
        assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
    finally:
        for running in (first, second):
            if running is not None:
                await asyncio.to_thread(running.stop)
                if running.process.stdout is not None:
                    running.process.stdout.close()
    for process in (first, second):
        assert process is not None
        text = process.log()
        assert "webhook" in text  # DEBUG logging was on
        assert webhook["secret"] not in text


async def test_merchants_see_only_their_own_webhooks(
    make_psp: MakePsp, receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    psp = await make_psp(**FAST, **LOOPBACK)
    hook = await receiver()
    shop, other = await psp.merchant(), await psp.merchant("Other Shop")
    webhook = await register(psp, shop, hook.url)
    await pay_one(psp, shop, await psp.wallet(), "M-1")
    (received,) = await hook.wait_for(1)
    event_id = received.event["event_id"]
    base = f"/v1/webhooks/{webhook['id']}"
    redeliver = f"{base}/deliveries/{event_id}/redeliver"

    status, listed = await psp.call("GET", "/v1/webhooks", headers=other.auth)
    assert (status, listed) == (200, {"webhooks": []})
    unknown = "/v1/webhooks/wh_00000000000000000000"
    for method, path in (
        ("GET", f"{base}/deliveries"),
        ("POST", redeliver),
        ("DELETE", base),
    ):
        theirs = await psp.call(method, path, headers=other.auth)
        nothing = await psp.call(method, path.replace(base, unknown), headers=shop.auth)
        assert theirs[0] == nothing[0] == 404
        assert theirs[1] == nothing[1], "another merchant's webhook looks like no webhook"
        assert theirs[1]["error"]["code"] == "not_found"
        assert (await psp.call(method, path))[0] == 401
    status, body = await psp.call(
        "POST", f"{base}/deliveries/evt_00000000000000000000/redeliver", headers=shop.auth
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    await asyncio.sleep(0.2)
    assert len(hook.requests) == 1  # none of that sent anything

    for limit in ("0", "501", "x", "-1", "1.5"):
        status, body = await psp.call("GET", f"{base}/deliveries?limit={limit}", headers=shop.auth)
        assert (status, body["error"]["code"]) == (422, "invalid_limit"), limit
    status, body = await psp.call("GET", f"{base}/deliveries?limit=1", headers=shop.auth)
    assert status == 200
    assert len(body["deliveries"]) == 1

    # Disabling stops deliveries, keeps the log, and is idempotent.
    status, disabled = await psp.call("DELETE", base, headers=shop.auth)
    assert status == 200
    assert disabled["enabled"] is False
    assert "secret" not in disabled
    assert (await psp.call("DELETE", base, headers=shop.auth))[1] == disabled
    status, body = await psp.call("POST", redeliver, headers=shop.auth)
    assert (status, body["error"]["code"]) == (409, "webhook_disabled")
    await pay_one(psp, shop, await psp.wallet(), "M-2")
    await asyncio.sleep(0.3)
    assert len(hook.requests) == 1
    assert len(await log_of(psp, shop, webhook["id"])) == 1
    status, listed = await psp.call("GET", "/v1/webhooks", headers=shop.auth)
    assert listed["webhooks"] == [disabled]
    assert_never_logged(caplog, webhook["secret"])


async def test_too_many_webhooks(make_psp: MakePsp) -> None:
    psp = await make_psp()
    shop = await psp.merchant()
    made = [await register(psp, shop, f"https://example.com/hook/{n}") for n in range(16)]
    status, body = await psp.call(
        "POST", "/v1/webhooks", json={"url": "https://example.com/17"}, headers=shop.auth
    )
    assert (status, body["error"]["code"]) == (409, "too_many_webhooks")
    await psp.call("DELETE", f"/v1/webhooks/{made[0]['id']}", headers=shop.auth)
    await register(psp, shop, "https://example.com/17")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "example.com/hook",
        "/hook",
        "mailto:shop@example.com",
        "http://",
        "http:///hook",
        "https://user:pass@example.com/hook",
        "https://user@example.com/hook",
        "https://example.com/hook#part",
        "https://example.com/hook#",
        "https://exa mple.com/hook",
        "https://example.com/\nhook",
        "https://exämple.com/hook",
        "https://example.com:99999/hook",
        "https://example.com:0/hook",
        "https://example.com:x/hook",
        "https://example.com/" + "a" * 2048,
        "",
        5,
        None,
        ["https://example.com"],
    ],
)
async def test_bad_urls_are_refused(psp: Psp, url: object) -> None:
    shop = await psp.merchant()
    status, body = await psp.call("POST", "/v1/webhooks", json={"url": url}, headers=shop.auth)
    assert (status, body["error"]["code"]) == (422, "invalid_url"), body
    assert (await psp.call("GET", "/v1/webhooks", headers=shop.auth))[1] == {"webhooks": []}


async def test_bad_requests_are_refused(psp: Psp) -> None:
    shop = await psp.merchant()
    for body, status, code in (
        ({}, 422, "missing_field"),
        ({"url": "https://example.com", "secret": "mine"}, 422, "unknown_field"),
    ):
        answer = await psp.call("POST", "/v1/webhooks", json=body, headers=shop.auth)
        assert (answer[0], answer[1]["error"]["code"]) == (status, code)
    answer = await psp.call("POST", "/v1/webhooks", data=b"{", headers=shop.auth)
    assert (answer[0], answer[1]["error"]["code"]) == (400, "invalid_json")
    answer = await psp.call("POST", "/v1/webhooks", json={"url": "https://example.com"})
    assert (answer[0], answer[1]["error"]["code"]) == (401, "unauthorized")
    for good in (
        "https://example.com",
        "HTTP://[2606:4700::1111]:8443/a/b?c=d",
        "http://shop.local/hook",
        "https://8.8.8.8/hook",
    ):
        await register(psp, shop, good)


# The cursor, and several processes on one PostgreSQL database.


def order(order_id: str) -> CheckoutRequest:
    return CheckoutRequest.parse(
        {"order_id": order_id, "amount": 500, "currency": "EUR"}, max_amount=10**9
    )


async def test_an_event_committed_after_a_higher_position_is_delivered(pg_dsn: str) -> None:
    """Positions are taken when events are written and committed in any
    order: a scan between the two commits must not pass over the lower one."""
    storage = await asyncio.to_thread(PostgresStorage, pg_dsn)
    try:
        store = WebhookStore.of(storage)
        (a, _), (b, _) = await storage.create_merchant("A"), await storage.create_merchant("B")
        to_a, _ = await store.create_endpoint(a.id, "https://a.example/hook", now=now_ms())
        to_b, _ = await store.create_endpoint(b.id, "https://b.example/hook", now=now_ms())
        checkout_a, _ = await storage.create_checkout(
            a.id, order("A-1"), public_url="HTTP://X", now=now_ms()
        )
        checkout_b, _ = await storage.create_checkout(
            b.id, order("B-1"), public_url="HTTP://X", now=now_ms()
        )
        wallet, _ = await storage.create_wallet("w", "EUR", 10_000)

        async with await psycopg.AsyncConnection.connect(pg_dsn) as late:
            # A's event, written as the storage writes one, and not committed yet.
            seq_row = await (
                await late.execute(
                    "UPDATE merchants SET last_event_seq = last_event_seq + 1 WHERE id = %s"
                    " RETURNING last_event_seq",
                    (a.id,),
                )
            ).fetchone()
            assert seq_row is not None
            position_row = await (
                await late.execute(
                    "INSERT INTO events"
                    " (event_id, merchant_id, seq, type, checkout_id, payload, created_at)"
                    " VALUES ('evt_late', %s, %s, 'checkout.cancelled', %s, '{}', %s)"
                    " RETURNING position",
                    (a.id, seq_row[0], checkout_a.id, now_ms()),
                )
            ).fetchone()
            assert position_row is not None
            await storage.pay(wallet.id, checkout_b.code, now=now_ms())  # B's event commits first
            await store.scan(now=now_ms())
            (to_b_first,) = await store.deliveries(b.id, to_b.id, limit=10)
            assert await store.deliveries(a.id, to_a.id, limit=10) == []
            await late.commit()

        await store.scan(now=now_ms())
        (to_a_first,) = await store.deliveries(a.id, to_a.id, limit=10)
        assert (to_a_first.event_id, to_a_first.seq) == ("evt_late", 1)
        with psycopg.connect(pg_dsn) as conn:
            position_b = conn.execute(
                "SELECT position FROM events WHERE event_id = %s", (to_b_first.event_id,)
            ).fetchone()
        assert position_b is not None
        assert position_row[0] < position_b[0]
    finally:
        await storage.close()


async def _partition_of(dsn: str, merchant_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (
            await conn.execute(
                "SELECT (hashtext(%s) & 2147483647) %% %s", (merchant_id, PARTITIONS)
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


NOTHING = Scan(due_endpoints=[], next_due_at=None, more=False)


async def test_the_store_serves_the_merchants_of_the_partitions_it_is_given(
    pg_dsn: str,
) -> None:
    storage = await asyncio.to_thread(PostgresStorage, pg_dsn)
    try:
        store = WebhookStore.of(storage)
        shop, _ = await storage.create_merchant("Shop")
        endpoint, _ = await store.create_endpoint(shop.id, "https://a.example/hook", now=now_ms())
        checkout, _ = await storage.create_checkout(
            shop.id, order("P-1"), public_url="HTTP://X", now=now_ms()
        )
        wallet, _ = await storage.create_wallet("w", "EUR", 10_000)
        await storage.pay(wallet.id, checkout.code, now=now_ms())
        partition = await _partition_of(pg_dsn, shop.id)
        ours, others = [partition], [p for p in range(PARTITIONS) if p != partition]

        now = now_ms()
        assert await store.scan(now=now, partitions=others) == NOTHING
        assert await store.deliveries(shop.id, endpoint.id, limit=10) == []
        assert (await store.scan(now=now, partitions=ours)).due_endpoints == [endpoint.id]
        assert await store.due(endpoint.id, now=now, limit=10, partitions=others) == []
        assert await store.due(endpoint.id, now=now, limit=10, partitions=[]) == []
        (due,) = await store.due(endpoint.id, now=now, limit=10, partitions=ours)
        assert due.endpoint_id == endpoint.id
        assert await store.scan(now=now, partitions=others) == NOTHING
    finally:
        await storage.close()


async def test_the_migration_turns_positions_into_each_merchants_seq(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await asyncio.to_thread(sqlite_at_migration, path, "0005_event_notify")
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO merchants (id, name, api_key_hash, last_event_seq, created_at)"
            " VALUES (?, ?, ?, ?, 1)",
            [("mer_a", "A", "ha", 3), ("mer_b", "B", "hb", 2), ("mer_c", "C", "hc", 0)],
        )
        conn.executemany(
            "INSERT INTO checkouts (id, merchant_id, order_id, request_hash, amount, currency,"
            " code, qr_url, status, created_at, expires_at, updated_at)"
            " VALUES (?, ?, 'O-1', 'x', 100, 'EUR', ?, 'HTTP://X/Q/C', 'cancelled', 1, 9, 2)",
            [("co_a", "mer_a", "CA"), ("co_b", "mer_b", "CB")],
        )
        # Positions 1-5: A1 B1 A2 B2 A3.
        conn.executemany(
            "INSERT INTO events"
            " (position, event_id, merchant_id, seq, type, checkout_id, payload, created_at)"
            " VALUES (?, ?, ?, ?, 'checkout.cancelled', ?, '{}', 2)",
            [
                (1, "evt_a1", "mer_a", 1, "co_a"),
                (2, "evt_b1", "mer_b", 1, "co_b"),
                (3, "evt_a2", "mer_a", 2, "co_a"),
                (4, "evt_b2", "mer_b", 2, "co_b"),
                (5, "evt_a3", "mer_a", 3, "co_a"),
            ],
        )
        conn.executemany(
            "INSERT INTO webhook_endpoints"
            " (id, merchant_id, url, secret, enabled, last_position, created_at)"
            " VALUES (?, ?, 'https://x.example/hook', 'whsec_x', 1, ?, 1)",
            [
                ("wh_a0", "mer_a", 0),
                ("wh_a4", "mer_a", 4),
                ("wh_a5", "mer_a", 5),
                ("wh_b2", "mer_b", 2),
                ("wh_c5", "mer_c", 5),
            ],
        )

    storage = await asyncio.to_thread(SqliteStorage, str(path))  # migrates
    try:
        with sqlite3.connect(path) as conn:
            cursors = dict(conn.execute("SELECT id, last_seq FROM webhook_endpoints"))
        assert cursors == {"wh_a0": 0, "wh_a4": 2, "wh_a5": 3, "wh_b2": 1, "wh_c5": 0}
        # Each endpoint is then sent what it had not been sent, and nothing twice.
        store = WebhookStore.of(storage)
        await store.scan(now=now_ms())
        sent = {
            endpoint_id: [
                d.event_id for d in await store.deliveries(merchant, endpoint_id, limit=9)
            ]
            for endpoint_id, merchant in (
                ("wh_a0", "mer_a"),
                ("wh_a4", "mer_a"),
                ("wh_a5", "mer_a"),
                ("wh_b2", "mer_b"),
                ("wh_c5", "mer_c"),
            )
        }
        assert sent == {
            "wh_a0": ["evt_a3", "evt_a2", "evt_a1"],
            "wh_a4": ["evt_a3"],
            "wh_a5": [],
            "wh_b2": ["evt_b2"],
            "wh_c5": [],
        }
    finally:
        await storage.close()


async def _split(psps: list[Psp], timeout: float = 10.0) -> list[list[int]]:
    """Waits until the processes hold every partition between them, each some."""
    deadline = time.monotonic() + timeout
    while True:
        shares = [await p.server.app[PARTITION_LEASES].held() or [] for p in psps]
        if sorted(p for share in shares for p in share) == list(range(PARTITIONS)) and all(shares):
            return shares
        assert time.monotonic() < deadline, shares
        await asyncio.sleep(0.2)


async def test_two_processes_deliver_each_event_once(pg_dsn: str, receiver: MakeReceiver) -> None:
    hook = await receiver()
    # Each request takes a while: two senders of one delivery would both be
    # in flight, and both be counted.
    hook.delay = 0.05
    psps = [await start_psp(pg_dsn, sweep_interval=0.05, **FAST, **LOOPBACK) for _ in range(2)]
    try:
        shares = await _split(psps)
        # Three merchants in each process's share.
        shops: list[Merchant] = []
        served = [0, 0]
        while len(shops) < 6:
            shop = await psps[0].merchant(f"Shop {len(shops)}")
            holder = 0 if await _partition_of(pg_dsn, shop.id) in shares[0] else 1
            if served[holder] < 3:
                served[holder] += 1
                shops.append(shop)
        for n, shop in enumerate(shops):
            await register(psps[n % 2], shop, hook.url)
        wallet = await psps[0].wallet(balance=10**9)
        for round_ in range(4):
            for n, shop in enumerate(shops):
                await pay_one(psps[(round_ + n) % 2], shop, wallet, f"O-{round_}")

        received = await hook.wait_for(24, timeout=15)
        await asyncio.sleep(0.5)  # a repeat would arrive now
        counts = Counter(r.event["event_id"] for r in hook.requests)
        assert len(counts) == 24, counts
        assert set(counts.values()) == {1}, counts
        for shop in shops:
            seqs = [r.event["seq"] for r in received if r.event["merchant_id"] == shop.id]
            assert seqs == [1, 2, 3, 4], (shop.id, seqs)
    finally:
        for psp in psps:
            await stop_psp(psp)


async def test_a_typed_checkout_is_delivered_created_then_paid(
    make_psp: MakePsp, receiver: MakeReceiver
) -> None:
    """Webhooks get every event of the merchant, so seq stays gapless: the
    creation of a checkout a customer typed at a printed code too."""
    psp = await make_psp(**FAST, **LOOPBACK)
    hook = await receiver()
    shop = await psp.merchant()
    webhook = await register(psp, shop, hook.url)
    open_amount = {"currency": "EUR", "min": 100, "max": 5000}
    status, made = await psp.call(
        "POST",
        "/v1/terminals/till-1/static-codes",
        json={"open_amount": open_amount},
        headers=shop.auth,
    )
    assert status == 201, made
    status, typed = await psp.call("POST", f"/S/{made['code']}/checkouts", json={"amount": 1250})
    assert status == 201, typed
    assert (await psp.pay(await psp.wallet(), typed["code"]))[0] == 201
    received = sorted(await hook.wait_for(2), key=lambda r: int(r.event["seq"]))
    assert [(r.event["seq"], r.event["type"]) for r in received] == [
        (1, "checkout.created"),
        (2, "checkout.paid"),
    ]
    for delivered in received:
        assert_signed(delivered, webhook["secret"])
        assert delivered.event["checkout"]["source"] == "static"
    assert received[0].event["checkout"]["status"] == "pending"
