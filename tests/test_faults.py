"""Faults injected on purpose: the PSP killed with SIGKILL under load, the
broker stopped under load, many wallets and checkouts racing. Each test
prints its figures and asserts that nothing acknowledged was lost and
nothing was done twice."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp

from psp_server.storage.sqlite import SqliteStorage
from scan2pay_common.messages import CheckoutEvent
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.process import NO_RATE_LIMITS, PspProcess
from tests.support.psp import Psp, code_of, start_psp, stop_psp

Subscribe = Callable[..., Subscriber]

# These tests load the PSP on purpose from one address with few tokens; the
# abuse limits (tested in test_abuse.py) would turn that load away.
UNLIMITED_FLAGS = NO_RATE_LIMITS
UNLIMITED = {
    "rate_pay_per_ip": None,
    "rate_pay_per_token": None,
    "rate_qr_per_ip": None,
    "rate_qr_per_token": None,
}


@dataclass
class Shop:
    merchant_id: str
    key: str
    tokens: list[str]


async def make_shop(db: Path, wallets: int, balance: int, name: str = "Shop") -> Shop:
    """Made the way an operator would, in a process of its own beside the server."""
    storage = await asyncio.to_thread(SqliteStorage, str(db))
    try:
        merchant, key = await storage.create_merchant(name)
        tokens = [(await storage.create_wallet(f"w{n}", "EUR", balance))[1] for n in range(wallets)]
    finally:
        await storage.close()
    return Shop(merchant.id, key, tokens)


@dataclass
class Load:
    """What the clients saw: checkouts created and payments acknowledged."""

    created: dict[str, str] = field(default_factory=dict)  # checkout id -> code
    paid: set[str] = field(default_factory=set)  # checkout ids whose payment got a 201
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)


async def pay_loop(
    http: aiohttp.ClientSession,
    url: str,
    shop: Shop,
    token: str,
    load: Load,
    prefix: str,
    stop: asyncio.Event,
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            async with http.post(
                f"{url}/v1/checkouts",
                headers={"Authorization": f"Bearer {shop.key}"},
                json={"order_id": f"{prefix}-{n}", "amount": 100, "currency": "EUR"},
            ) as response:
                load.statuses[response.status] += 1
                if response.status not in (200, 201):
                    continue
                checkout = await response.json()
            load.created[checkout["id"]] = code_of(checkout)
            async with http.post(
                f"{url}/v1/payments",
                headers={"Authorization": f"Bearer {token}"},
                json={"code": code_of(checkout)},
            ) as response:
                load.statuses[response.status] += 1
                if response.status == 201:
                    load.paid.add(checkout["id"])
        except (TimeoutError, aiohttp.ClientError) as exc:
            load.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.01)


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def events_of(subscriber: Subscriber, quiet: float = 1.0) -> list[CheckoutEvent]:
    return [CheckoutEvent.from_json(m.payload) for m in subscriber.drain(quiet)]


async def test_psp_killed_twenty_times_under_load_loses_and_doubles_nothing(
    tmp_path: Path, broker: Mosquitto, subscribe: Subscribe
) -> None:
    db = tmp_path / "crash.db"
    workers = 6
    shop = await make_shop(db, wallets=workers, balance=1_000_000)
    subscriber = subscribe(
        f"scan2pay/v1/m/{shop.merchant_id}/events", client_id="crash-backoffice", persistent=True
    )
    load = Load()
    kills = 20
    rng = random.Random(20261124)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for round_ in range(kills):
            server = await asyncio.to_thread(PspProcess, db, mqtt=broker.url, extra=UNLIMITED_FLAGS)
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(
                    pay_loop(http, server.url, shop, token, load, f"r{round_}w{w}", stop)
                )
                for w, token in enumerate(shop.tokens)
            ]
            await asyncio.sleep(rng.uniform(0.15, 0.6))
            server.process.send_signal(signal.SIGKILL)  # mid-flight, at a random moment
            await asyncio.to_thread(server.process.wait)
            stop.set()
            await asyncio.gather(*tasks)
            server.stop()
        # One last clean run lets the outbox drain what the kills left.
        final = await asyncio.to_thread(PspProcess, db, mqtt=broker.url, extra=UNLIMITED_FLAGS)
        try:
            for _ in range(1000):
                if rows(db, "SELECT COUNT(*) FROM events WHERE published_at IS NULL")[0][0] == 0:
                    break
                await asyncio.sleep(0.02)
            delivered = await asyncio.to_thread(events_of, subscriber)
        finally:
            final.stop()

    paid_in_db = {cid for (cid,) in rows(db, "SELECT id FROM checkouts WHERE status = 'paid'")}
    debits = Counter(cid for (cid,) in rows(db, "SELECT checkout_id FROM payments"))
    events_by_checkout: dict[str, set[str]] = defaultdict(set)
    for event in delivered:
        if event.type == "checkout.paid":
            events_by_checkout[event.checkout.id].add(event.event_id)
    redelivered = len(delivered) - len({e.event_id for e in delivered})

    lost_payments = load.paid - paid_in_db
    lost_events = paid_in_db - set(events_by_checkout)
    double_debits = {cid for cid, n in debits.items() if n > 1}
    double_events = {cid for cid, ids in events_by_checkout.items() if len(ids) > 1}
    half_done = set(debits) ^ paid_in_db
    print(
        f"\ncrash test: {kills} SIGKILLs; {len(load.created)} checkouts created, "
        f"{len(load.paid)} payments acknowledged, {len(paid_in_db)} paid in the database; "
        f"client errors {dict(load.errors)}; statuses {dict(load.statuses)}; "
        f"events delivered {len(delivered)} ({redelivered} redelivered, dropped by event_id); "
        f"lost payments {len(lost_payments)}, lost events {len(lost_events)}, "
        f"double debits {len(double_debits)}, double events {len(double_events)}, "
        f"half done {len(half_done)}"
    )
    assert kills == 20 and len(load.paid) > 50
    assert lost_payments == set()
    assert lost_events == set()
    assert double_debits == set() and double_events == set()
    assert half_done == set()
    assert 500 not in load.statuses
    # Money adds up: what the wallets lost, the merchant gained.
    spent = sum(1_000_000 - b for (b,) in rows(db, "SELECT balance FROM wallets"))
    assert spent == 100 * len(paid_in_db)
    assert rows(db, "SELECT balance FROM merchant_balances") == [(spent,)]
    # The merchant's event stream has no gaps.
    seqs = [s for (s,) in rows(db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "database is locked" not in (tmp_path / "crash.log").read_text(errors="replace")


async def test_broker_outage_under_load_delivers_every_event_in_order(
    tmp_path: Path, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = await start_psp(str(tmp_path / "outage.db"), mqtt_url=broker.url, **UNLIMITED)
    try:
        await _outage_under_load(psp, broker, subscribe)
    finally:
        await stop_psp(psp)


async def _outage_under_load(psp: Psp, broker: Mosquitto, subscribe: Subscribe) -> None:
    shops = [await psp.merchant(f"Shop {n}") for n in range(3)]
    wallet = await psp.wallet(balance=10_000_000)
    subscriber = subscribe("scan2pay/v1/m/+/events", client_id="outage-backoffice", persistent=True)
    acknowledged: list[str] = []
    during_outage = 0
    stop = asyncio.Event()
    broker_down = asyncio.Event()

    async def cashier(shop_index: int) -> None:
        nonlocal during_outage
        n = 0
        while not stop.is_set():
            n += 1
            checkout = await psp.checkout(
                shops[shop_index], order_id=f"O{shop_index}-{n}", amount=50
            )
            status, _ = await psp.pay(wallet, code_of(checkout))
            assert status == 201
            acknowledged.append(checkout["id"])
            if broker_down.is_set():
                during_outage += 1
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(cashier(i)) for i in range(len(shops))]
    await asyncio.sleep(1)
    await asyncio.to_thread(broker.stop)
    broker_down.set()
    await asyncio.sleep(10)  # payments go on without the broker
    await asyncio.to_thread(broker.start)
    broker_down.clear()
    await asyncio.sleep(1)
    stop.set()
    await asyncio.gather(*tasks)
    for _ in range(1000):
        if not await psp.storage.unpublished_events():
            break
        await asyncio.sleep(0.02)
    delivered = await asyncio.to_thread(events_of, subscriber, 1.5)

    unique: dict[str, CheckoutEvent] = {}
    for event in delivered:
        unique.setdefault(event.event_id, event)
    per_merchant: dict[str, list[int]] = defaultdict(list)
    for event in delivered:
        per_merchant[event.merchant_id].append(event.seq)
    # Each seq at its first delivery; a redelivery of an event_id may repeat it.
    firsts = {m: list(dict.fromkeys(seqs)) for m, seqs in per_merchant.items()}
    out_of_order = sum(1 for seqs in firsts.values() for a, b in pairwise(seqs) if b < a)
    lost = set(acknowledged) - {e.checkout.id for e in unique.values()}
    print(
        f"\nbroker outage: 10 s down; {len(acknowledged)} payments acknowledged "
        f"({during_outage} while the broker was down); {len(delivered)} events delivered, "
        f"{len(delivered) - len(unique)} redelivered (dropped by event_id); "
        f"lost {len(lost)}, out of order {out_of_order}"
    )
    assert during_outage > 20
    assert lost == set()
    assert out_of_order == 0
    for merchant_id, seqs in firsts.items():
        assert seqs == list(range(1, len(seqs) + 1)), merchant_id


async def race(
    url: str, requests: list[tuple[str, dict[str, Any], str]], delays: list[float] | None = None
) -> list[int]:
    """Sends every request at once (each after its delay, in seconds, if
    given) and returns the statuses."""
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(path: str, body: dict[str, Any], token: str, delay: float) -> int:
            await start.wait()
            if delay:
                await asyncio.sleep(delay)
            async with http.post(
                f"{url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                await response.read()
                return response.status

        tasks = [
            asyncio.create_task(one(*request, delay))
            for request, delay in zip(requests, delays or [0.0] * len(requests), strict=True)
        ]
        await asyncio.sleep(0.1)
        start.set()
        return list(await asyncio.gather(*tasks))


async def test_two_hundred_wallets_race_for_one_code(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    shop = await make_shop(db, wallets=200, balance=10_000)
    server = await asyncio.to_thread(PspProcess, db, extra=UNLIMITED_FLAGS)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.url}/v1/checkouts",
                headers={"Authorization": f"Bearer {shop.key}"},
                json={"order_id": "RACE-200", "amount": 2500, "currency": "EUR"},
            ) as response,
        ):
            code = code_of(await response.json())
        statuses = await race(
            server.url, [("/v1/payments", {"code": code}, t) for t in shop.tokens]
        )
    finally:
        server.stop()
    debited = [b for (b,) in rows(db, "SELECT balance FROM wallets") if b != 10_000]
    print(f"\n200 wallets, one code: {Counter(statuses)}; wallets debited {len(debited)}")
    assert Counter(statuses) == {201: 1, 409: 199}
    assert debited == [7500]


async def test_a_thousand_checkouts_paid_at_once(tmp_path: Path) -> None:
    db = tmp_path / "thousand.db"
    wallets = 10
    shop = await make_shop(db, wallets=wallets, balance=1_000_000)
    server = await asyncio.to_thread(PspProcess, db, extra=UNLIMITED_FLAGS)
    try:
        creates = [
            ("/v1/checkouts", {"order_id": f"T-{n}", "amount": 7, "currency": "EUR"}, shop.key)
            for n in range(1000)
        ]
        started = time.perf_counter()
        assert set(await race(server.url, creates)) == {201}
        codes = [code for (code,) in rows(db, "SELECT code FROM checkouts")]
        # Ten wallets pay a hundred checkouts each, all at once: a lost
        # update of a balance would show in the sums below.
        payments = [
            ("/v1/payments", {"code": code}, shop.tokens[n % wallets])
            for n, code in enumerate(codes)
        ]
        statuses = await race(server.url, payments)
        seconds = time.perf_counter() - started
        log = server.log()
    finally:
        server.stop()
    balances = sorted(b for (b,) in rows(db, "SELECT balance FROM wallets"))
    print(
        f"\n1,000 checkouts created then paid at once: {Counter(statuses)} "
        f"in {seconds:.2f} s; wallet balances {set(balances)}"
    )
    assert Counter(statuses) == {201: 1000}
    assert balances == [1_000_000 - 700] * wallets
    assert rows(db, "SELECT balance FROM merchant_balances") == [(7000,)]
    assert "database is locked" not in log and "Traceback" not in log


def id_of(request: tuple[str, dict[str, Any], str]) -> str:
    path, body, _ = request
    return f"pay:{body['code']}" if path == "/v1/payments" else f"cancel:{path.split('/')[3]}"


async def test_pay_racing_cancel_and_expiry_ends_in_exactly_one_outcome(tmp_path: Path) -> None:
    """Each checkout gets a payment and a cancel at once, or a payment at the
    very moment it expires: the database decides, and only once."""
    db = tmp_path / "outcome.db"
    shop = await make_shop(db, wallets=1, balance=1_000_000)
    token = shop.tokens[0]
    server = await asyncio.to_thread(
        PspProcess, db, extra=("--sweep-interval", "0.01", *UNLIMITED_FLAGS)
    )
    try:
        creates = [
            ("/v1/checkouts", {"order_id": f"C-{n}", "amount": 10, "currency": "EUR"}, shop.key)
            for n in range(100)
        ]
        creates += [
            (
                "/v1/checkouts",
                {"order_id": f"E-{n}", "amount": 10, "currency": "EUR", "expires_in": 1},
                shop.key,
            )
            for n in range(100)
        ]
        assert set(await race(server.url, creates)) == {201}
        ids = dict(rows(db, "SELECT order_id, id FROM checkouts"))
        codes = dict(rows(db, "SELECT order_id, code FROM checkouts"))
        cancel_race: list[tuple[str, dict[str, Any], str]] = []
        head_starts: list[float] = []
        for n in range(100):
            cancel_race += [
                ("/v1/payments", {"code": codes[f"C-{n}"]}, token),
                (f"/v1/checkouts/{ids[f'C-{n}']}/cancel", {}, shop.key),
            ]
            # Half the pairs give the cancel a head start (a cancel costs an
            # extra round trip for the merchant key, so it needs one); the
            # rest let the payment go first. Either way both are in flight.
            head_starts += [0.03, 0.0] if n % 2 else [0.0, 0.0]
        answers = dict(
            zip(
                map(id_of, cancel_race),
                await race(server.url, cancel_race, head_starts),
                strict=True,
            )
        )
        cancel_statuses = []
        for n in range(100):
            cancel_statuses.append(answers[f"pay:{codes[f'C-{n}']}"])
            cancel_statuses.append(answers[f"cancel:{ids[f'C-{n}']}"])
        # Pay the expiring ones in the very milliseconds they expire, while
        # the sweeper runs every 10 ms.
        expires_at = min(
            e for (e,) in rows(db, "SELECT expires_at FROM checkouts WHERE order_id LIKE 'E-%'")
        )
        # race() waits 0.1 s before it fires; the payments then spread over
        # 0.1 s centred on the expiry.
        await asyncio.sleep(max(0.0, (expires_at - time.time() * 1000 - 150) / 1000))
        expiry_statuses = await race(
            server.url,
            [("/v1/payments", {"code": codes[f"E-{n}"]}, token) for n in range(100)],
            [n / 1000 for n in range(100)],
        )
        await asyncio.sleep(1.2)  # let the sweeper finish
    finally:
        server.stop()
    statuses = dict(rows(db, "SELECT order_id, status FROM checkouts"))
    paid = {cid for (cid,) in rows(db, "SELECT checkout_id FROM payments")}
    events = Counter(cid for (cid,) in rows(db, "SELECT checkout_id FROM events"))
    pairs = list(zip(cancel_statuses[::2], cancel_statuses[1::2], strict=True))
    print(
        f"\npay vs cancel: {Counter(pairs)}; pay vs expiry: {Counter(expiry_statuses)}; "
        f"outcomes {Counter(statuses.values())}"
    )
    for n, (pay_status, cancel_status) in enumerate(pairs):
        status = statuses[f"C-{n}"]
        # Exactly one of the two won, and the database says which.
        assert (pay_status, cancel_status) in ((201, 409), (410, 200)), (pay_status, cancel_status)
        assert status == ("paid" if pay_status == 201 else "cancelled")
    for n, pay_status in enumerate(expiry_statuses):
        status = statuses[f"E-{n}"]
        assert (pay_status, status) in ((201, "paid"), (410, "expired")), (pay_status, status)
    assert paid == {ids[o] for o, s in statuses.items() if s == "paid"}
    assert set(events.values()) == {1} and len(events) == 200  # one outcome event each
    assert rows(db, "SELECT balance FROM wallets") == [(1_000_000 - 10 * len(paid),)]
