"""Faults injected on purpose: the PSP killed with SIGKILL under load, the
broker stopped under load, many wallets and checkouts racing. Each test
prints its figures and asserts that nothing acknowledged was lost and
nothing was done twice.

Each runs on SQLite (one process, its single writer) and on PostgreSQL with
``serve --workers 2``, the way the PSP is run to use every core: two real
worker processes under a supervisor, on a fresh database each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from psp_server.storage import open_storage
from psp_server.storage.partitions import PARTITIONS
from psp_server.storage.postgres_processes import LOCK_SPACE
from scan2pay_common.messages import CheckoutEvent
from tests.support.broker import Mosquitto
from tests.support.db import is_postgresql
from tests.support.file_clock import FileClock
from tests.support.ledger import assert_ledger_holds, rows
from tests.support.mqtt import Subscriber
from tests.support.polling import until, wait_until
from tests.support.process import NO_RATE_LIMITS, PspProcess
from tests.support.psp import code_of
from tests.support.workers import WorkerLog, kill_whole_psp

Subscribe = Callable[..., Subscriber]


def workers_for(db: str) -> int:
    """SQLite has one writer and so one process; PostgreSQL is tested the
    way it is run to scale, with more than one."""
    return 2 if is_postgresql(db) else 1


def backend(db: str) -> str:
    return f"PostgreSQL, {workers_for(db)} workers" if is_postgresql(db) else "SQLite"


def serve(
    db: str,
    tmp_path: Path,
    *,
    mqtt: str = "none",
    extra: tuple[str, ...] = (),
    clock: FileClock | None = None,
) -> PspProcess:
    """``psp-server serve`` on ``db``, its workers ready to accept, on
    ``clock`` when given. These tests load the PSP on purpose from one
    address with few tokens; the abuse limits (tested in test_abuse.py)
    would turn that load away."""
    server = PspProcess(
        db,
        mqtt=mqtt,
        extra=(*extra, *NO_RATE_LIMITS),
        workers=workers_for(db),
        log_path=tmp_path / "psp.log",
        clock=clock,
    )
    if workers_for(db) > 1:
        # The supervisor says it listens before its workers can answer: a
        # round of load would otherwise be spent waiting for them.
        try:
            WorkerLog(server).wait_for_workers(workers_for(db))
        except BaseException:
            server.stop()
            raise
    return server


@dataclass
class Shop:
    merchant_id: str
    key: str
    tokens: list[str]


async def make_shop(db: str, wallets: int, balance: int, name: str = "Shop") -> Shop:
    """Made the way an operator would, in a process of its own beside the server."""
    storage = await asyncio.to_thread(open_storage, db)
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


@contextlib.asynccontextmanager
async def cashiers(
    http: aiohttp.ClientSession, url: str, shops: list[Shop], load: Load, prefix: str
) -> AsyncIterator[None]:
    """One cashier per wallet of the first shop, each selling for a shop in
    turn, for as long as the block runs."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            pay_loop(http, url, shops[w % len(shops)], token, load, f"{prefix}w{w}", stop)
        )
        for w, token in enumerate(shops[0].tokens)
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def outbox_drained(db: str) -> None:
    await until(
        lambda: rows(db, "SELECT COUNT(*) FROM events WHERE published_at IS NULL")[0][0] == 0,
        what="every event published",
        timeout=20,
        every=0.02,
    )


def events_of(subscriber: Subscriber, quiet: float = 1.0) -> list[CheckoutEvent]:
    return [CheckoutEvent.from_json(m.payload) for m in subscriber.drain(quiet)]


CASHIERS = 6
CRASHES = [
    # The whole PSP, twenty times: one process on SQLite.
    pytest.param("sqlite", "psp", 20, id="sqlite-psp"),
    # One of two workers at a time, while the other serves on and the
    # supervisor replaces it.
    pytest.param("postgresql", "worker", 10, id="postgresql-2workers-kill-worker"),
    # Supervisor and workers at once, as a machine losing power; fewer
    # rounds, as each starts two workers.
    pytest.param("postgresql", "psp", 6, id="postgresql-2workers-kill-psp"),
]


@pytest.mark.parametrize(("db", "victim", "kills"), CRASHES, indirect=["db"])
async def test_psp_killed_under_load_loses_and_doubles_nothing(
    db: str, victim: str, kills: int, tmp_path: Path, broker: Mosquitto, subscribe: Subscribe
) -> None:
    # Two merchants: on PostgreSQL their events may leave from different
    # workers' relays, and each merchant's seq is checked on its own.
    shops = [
        await make_shop(db, wallets=CASHIERS, balance=1_000_000, name="Shop A"),
        await make_shop(db, wallets=0, balance=0, name="Shop B"),
    ]
    subscriber = subscribe("scan2pay/v1/m/+/events", client_id="crash-backoffice", persistent=True)
    load = Load()
    rng = random.Random(20261124)  # noqa: S311 - seeded test data, nothing secret
    timeout = aiohttp.ClientTimeout(total=5)
    served_by_survivor: list[int] = []
    async with aiohttp.ClientSession(timeout=timeout) as http:
        if victim == "worker":
            server = await asyncio.to_thread(serve, db, tmp_path, mqtt=broker.url)
            try:
                async with cashiers(http, server.url, shops, load, "k"):
                    served_by_survivor = await kill_workers(server, kills, rng)
                await outbox_drained(db)
                delivered = await asyncio.to_thread(events_of, subscriber)
            finally:
                server.stop()
        else:
            for round_ in range(kills):
                server = await asyncio.to_thread(serve, db, tmp_path, mqtt=broker.url)
                async with cashiers(http, server.url, shops, load, f"r{round_}"):
                    await asyncio.sleep(rng.uniform(0.15, 0.6))
                    # Mid-flight, at a random moment.
                    if workers_for(db) > 1:
                        await asyncio.to_thread(kill_whole_psp, server)
                    else:
                        server.process.send_signal(signal.SIGKILL)
                        await asyncio.to_thread(server.process.wait)
                server.stop()
            # One last clean run lets the outbox drain what the kills left.
            final = await asyncio.to_thread(serve, db, tmp_path, mqtt=broker.url)
            try:
                await outbox_drained(db)
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
    log = (tmp_path / "psp.log").read_text(errors="replace")
    print(
        f"\ncrash test ({backend(db)}): {kills} SIGKILLs of "
        f"{'one worker' if victim == 'worker' else 'the whole PSP'}; "
        f"{len(load.created)} checkouts created, "
        f"{len(load.paid)} payments acknowledged, {len(paid_in_db)} paid in the database; "
        f"client errors {dict(load.errors)}; statuses {dict(load.statuses)}; "
        f"events delivered {len(delivered)} ({redelivered} redelivered, dropped by event_id); "
        f"lost payments {len(lost_payments)}, lost events {len(lost_events)}, "
        f"double debits {len(double_debits)}, double events {len(double_events)}, "
        f"half done {len(half_done)}"
        + (
            f"; answered by the other worker while one was replaced: {served_by_survivor}"
            if served_by_survivor
            else ""
        )
    )
    assert kills >= (6 if is_postgresql(db) else 20)
    assert len(load.paid) > 50
    assert lost_payments == set()
    assert lost_events == set()
    assert double_debits == set()
    assert double_events == set()
    assert half_done == set()
    assert 500 not in load.statuses
    # Money adds up: what the wallets lost, the merchants gained.
    spent = sum(1_000_000 - b for (b,) in rows(db, "SELECT balance FROM wallets"))
    assert spent == 100 * len(paid_in_db)
    assert sum(b for (b,) in rows(db, "SELECT balance FROM merchant_balances")) == spent
    assert_ledger_holds(db)
    # Each merchant's event stream has no gaps.
    for shop in shops:
        seqs = [
            s
            for (s,) in rows(
                db, "SELECT seq FROM events WHERE merchant_id = ? ORDER BY seq", shop.merchant_id
            )
        ]
        assert seqs == list(range(1, len(seqs) + 1)), shop.merchant_id
    assert "database is locked" not in log
    assert "Traceback" not in log
    if victim == "psp":
        # Only the last clean run stopped gracefully: every kill was abrupt.
        assert log.count("shutting down") == workers_for(db)
    if victim == "worker":
        assert len(re.findall(r"worker \d \(pid \d+\) was killed by signal 9", log)) == kills
        # The other worker answered requests while each one was replaced.
        assert len(served_by_survivor) == kills
        assert min(served_by_survivor) > 0


async def kill_workers(server: PspProcess, kills: int, rng: random.Random) -> list[int]:
    """SIGKILLs one worker at a time, at random moments, each once both are
    serving; returns how many requests the other answered meanwhile."""
    log = WorkerLog(server)
    pids = await asyncio.to_thread(log.wait_for_workers, 2)
    served: list[int] = []
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.15, 0.6))
        victim = rng.choice(sorted(pids))
        (survivor,) = pids - {victim}
        await asyncio.to_thread(log.update)
        before = log.answered[survivor]
        os.kill(victim, signal.SIGKILL)
        pids = await asyncio.to_thread(log.wait_for_workers, 2, 10.0, victim)
        assert survivor in pids, "the other worker died too"
        served.append(log.answered[survivor] - before)
    return served


def partition_holders(db: str) -> dict[int, int]:
    """Each partition of merchants, by the backend pid of the worker
    connection that holds it (psp_server/storage/postgres_processes.py)."""
    return dict(
        rows(
            db,
            "SELECT objid::bigint, pid FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid::bigint = ? AND objid::bigint < ? AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            LOCK_SPACE,
            # The sweeper's lock is in the same space, past the partitions.
            PARTITIONS,
        )
    )


async def outage_shops(db: str) -> list[Shop]:
    """Three merchants on SQLite. On PostgreSQL, two in each worker's share
    of the partitions, so that both workers' relays have events waiting
    when the broker comes back."""
    if not is_postgresql(db):
        return [await make_shop(db, wallets=0, balance=0, name=f"Shop {n}") for n in range(3)]

    def split() -> dict[int, int] | None:
        holders = partition_holders(db)
        shares = Counter(holders.values())
        return holders if len(holders) == PARTITIONS and len(shares) == 2 else None

    holders: dict[int, int] = await asyncio.to_thread(wait_until, split)
    shops: dict[int, list[Shop]] = defaultdict(list)
    for n in range(40):
        shop = await make_shop(db, wallets=0, balance=0, name=f"Shop {n}")
        [(partition,)] = rows(
            db, "SELECT (hashtext(?) & 2147483647) % ?", shop.merchant_id, PARTITIONS
        )
        holder = shops[holders[partition]]
        if len(holder) < 2:
            holder.append(shop)
        if sorted(map(len, shops.values())) == [2, 2]:
            break
    assert sorted(map(len, shops.values())) == [2, 2], holders
    return [shop for share in shops.values() for shop in share]


async def test_broker_outage_under_load_delivers_every_event_in_order(
    db: str, tmp_path: Path, broker: Mosquitto, subscribe: Subscribe
) -> None:
    server = await asyncio.to_thread(serve, db, tmp_path, mqtt=broker.url)
    try:
        shops = await outage_shops(db)
        wallet = (await make_shop(db, wallets=1, balance=10_000_000, name="Wallets")).tokens[0]
        await _outage_under_load(server, db, shops, wallet, broker, subscribe)
    finally:
        server.stop()


async def _outage_under_load(
    server: PspProcess,
    db: str,
    shops: list[Shop],
    wallet: str,
    broker: Mosquitto,
    subscribe: Subscribe,
) -> None:
    subscriber = subscribe("scan2pay/v1/m/+/events", client_id="outage-backoffice", persistent=True)
    acknowledged: list[str] = []
    during_outage = 0
    stop = asyncio.Event()
    broker_down = asyncio.Event()

    async def cashier(http: aiohttp.ClientSession, shop: Shop, shop_index: int) -> None:
        nonlocal during_outage
        n = 0
        while not stop.is_set():
            n += 1
            async with http.post(
                f"{server.url}/v1/checkouts",
                headers={"Authorization": f"Bearer {shop.key}"},
                json={"order_id": f"O{shop_index}-{n}", "amount": 50, "currency": "EUR"},
            ) as response:
                assert response.status == 201, await response.text()
                checkout = await response.json()
            async with http.post(
                f"{server.url}/v1/payments",
                headers={"Authorization": f"Bearer {wallet}"},
                json={"code": code_of(checkout)},
            ) as response:
                assert response.status == 201, await response.text()
            acknowledged.append(checkout["id"])
            if broker_down.is_set():
                during_outage += 1
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(cashier(http, shop, i)) for i, shop in enumerate(shops)]
        await asyncio.sleep(1)
        await asyncio.to_thread(broker.stop)
        broker_down.set()
        await asyncio.sleep(10)  # payments go on without the broker
        await asyncio.to_thread(broker.start)
        broker_down.clear()
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*tasks)
    await outbox_drained(db)
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
        f"\nbroker outage ({backend(db)}, {len(shops)} "
        f"merchants): 10 s down; {len(acknowledged)} payments acknowledged "
        f"({during_outage} while the broker was down); {len(delivered)} events delivered, "
        f"{len(delivered) - len(unique)} redelivered (dropped by event_id); "
        f"lost {len(lost)}, out of order {out_of_order}"
    )
    assert during_outage > 20
    assert lost == set()
    assert out_of_order == 0
    assert set(firsts) == {shop.merchant_id for shop in shops}
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


async def test_two_hundred_wallets_race_for_one_code(db: str, tmp_path: Path) -> None:
    shop = await make_shop(db, wallets=200, balance=10_000)
    server = await asyncio.to_thread(serve, db, tmp_path)
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
    assert_ledger_holds(db)


async def test_a_thousand_checkouts_paid_at_once(db: str, tmp_path: Path) -> None:
    wallets = 10
    shop = await make_shop(db, wallets=wallets, balance=1_000_000)
    server = await asyncio.to_thread(serve, db, tmp_path)
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
    assert "database is locked" not in log
    assert "Traceback" not in log
    assert_ledger_holds(db)


def id_of(request: tuple[str, dict[str, Any], str]) -> str:
    path, body, _ = request
    return f"pay:{body['code']}" if path == "/v1/payments" else f"cancel:{path.split('/')[3]}"


async def test_pay_racing_cancel_and_expiry_ends_in_exactly_one_outcome(
    db: str, tmp_path: Path
) -> None:
    """Each checkout gets a payment and a cancel at once, or a payment at the
    very moment it expires: the database decides, and only once (on
    PostgreSQL, with the requests and the sweeper spread over two workers)."""
    shop = await make_shop(db, wallets=1, balance=1_000_000)
    token = shop.tokens[0]
    clock = FileClock(tmp_path / "clock")
    server = await asyncio.to_thread(
        serve, db, tmp_path, extra=("--sweep-interval", "0.01"), clock=clock
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
        expiries = dict(
            rows(db, "SELECT order_id, expires_at FROM checkouts WHERE order_id LIKE ?", "E-%")
        )
        # The PSP's clock moves on to 150 ms before the first expiry, and
        # runs from there. race() waits 0.1 s before it fires; the payments
        # then spread over 0.1 s centred on the expiry, each on its own
        # checkout's: created at once over two workers, they may expire tens
        # of ms apart.
        clock.advance_to(min(expiries.values()) - 150)
        fired = clock.now_ms() + 100
        expiry_statuses = await race(
            server.url,
            [("/v1/payments", {"code": codes[f"E-{n}"]}, token) for n in range(100)],
            [max(0.0, (expiries[f"E-{n}"] + n - 50 - fired) / 1000) for n in range(100)],
        )
        spread = max(expiries.values()) - min(expiries.values())
        clock.advance_to(max(expiries.values()))
        await asyncio.to_thread(
            wait_until,
            lambda: rows(db, "SELECT id FROM checkouts WHERE status = 'pending'") == [],
            "the sweeper expiring what was not paid",
        )
    finally:
        server.stop()
    statuses = dict(rows(db, "SELECT order_id, status FROM checkouts"))
    paid = {cid for (cid,) in rows(db, "SELECT checkout_id FROM payments")}
    events = Counter(cid for (cid,) in rows(db, "SELECT checkout_id FROM events"))
    pairs = list(zip(cancel_statuses[::2], cancel_statuses[1::2], strict=True))
    print(
        f"\npay vs cancel: {Counter(pairs)}; pay vs expiry: {Counter(expiry_statuses)}; "
        f"outcomes {Counter(statuses.values())}; expiries {spread} ms apart"
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
    assert set(events.values()) == {1}  # one outcome event each
    assert len(events) == 200
    assert rows(db, "SELECT balance FROM wallets") == [(1_000_000 - 10 * len(paid),)]
    assert_ledger_holds(db)
