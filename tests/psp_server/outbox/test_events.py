"""Events through a real mosquitto: exactly one per status change, in order,
and none lost while the broker is away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.core.records import OutboxEvent
from psp_server.outbox.relay import topics_of
from psp_server.storage import postgres, sqlite
from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.topics import events_topic, terminal_events_topic
from tests.support.broker import Mosquitto
from tests.support.db import at_migration, connect, is_postgresql
from tests.support.mqtt import Subscriber
from tests.support.polling import until
from tests.support.postgres import PgServer, create_database, drop_database
from tests.support.psp import Psp, code_of

Subscribe = Callable[..., Subscriber]


def events(subscriber: Subscriber, count: int, timeout: float = 10.0) -> list[CheckoutEvent]:
    return [CheckoutEvent.from_json(m.payload) for m in subscriber.wait_for(count, timeout)]


def new_events(
    subscriber: Subscriber, seen: set[str], count: int, timeout: float = 10.0
) -> list[CheckoutEvent]:
    """The next ``count`` events not seen before, as the contract tells a
    consumer to read them: delivery is at least once, and a repeat (the
    broker redelivers a message whose PUBACK it had not had when it
    stopped) is dropped by ``event_id``."""
    deadline = time.monotonic() + timeout
    fresh: list[CheckoutEvent] = []
    while len(fresh) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(fresh)} of {count} new events arrived"
        (event,) = events(subscriber, 1, left)
        if event.event_id not in seen:
            seen.add(event.event_id)
            fresh.append(event)
    return fresh


async def test_paid_checkout_yields_exactly_one_event(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    checkout = await psp.checkout(shop, amount=1234, terminal_id="lane-1")
    status, _ = await psp.pay(await psp.wallet(), code_of(checkout))
    assert status == 201
    (event,) = await asyncio.to_thread(events, subscriber, 1)
    assert event.type == "checkout.paid"
    assert event.seq == 1
    assert event.merchant_id == shop.id
    assert event.checkout.id == checkout["id"]
    assert event.checkout.status == "paid"
    assert (event.checkout.amount, event.checkout.currency) == (1234, "EUR")
    assert event.checkout.terminal_id == "lane-1"
    # A repeated payment attempt makes no second event.
    assert (await psp.pay(await psp.wallet(), code_of(checkout)))[0] == 409
    assert await asyncio.to_thread(subscriber.drain, 0.5) == []


async def test_an_event_is_marked_published_at_the_psps_time(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    psp.clock.advance(3_600_000)  # the PSP's clock, not the system's, dates it
    checkout = await psp.checkout(shop)
    await psp.pay(await psp.wallet(), code_of(checkout))
    await asyncio.to_thread(events, subscriber, 1)
    await until(psp.outbox_drained, what="the event marked published", timeout=5, every=0.02)
    with connect(psp.server.settings.db) as conn:
        (published_at,) = conn.execute("SELECT published_at FROM events").fetchone()
    assert abs(published_at - psp.clock.now_ms()) < 60_000


async def test_events_are_not_retained_and_go_only_to_their_merchant(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop, other = await psp.merchant(), await psp.merchant("Other")
    mine = subscribe(events_topic(shop.id))
    theirs = subscribe(events_topic(other.id))
    checkout = await psp.checkout(shop)
    await psp.pay(await psp.wallet(), code_of(checkout))
    (message,) = await asyncio.to_thread(mine.wait_for, 1)
    assert message.topic == f"scan2pay/v1/m/{shop.id}/events"
    assert not message.retain
    assert await asyncio.to_thread(theirs.drain, 0.5) == []


async def test_each_final_status_has_its_event_and_seq_has_no_gaps(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    paid = await psp.checkout(shop, order_id="P")
    await psp.pay(await psp.wallet(), code_of(paid))
    cancelled = await psp.checkout(shop, order_id="C")
    await psp.call("POST", f"/v1/checkouts/{cancelled['id']}/cancel", headers=shop.auth)
    expiring = await psp.checkout(shop, order_id="E", expires_in=1)
    psp.pass_expiry(expiring)
    got = await asyncio.to_thread(events, subscriber, 3, 10.0)
    assert [(e.type, e.checkout.id) for e in got] == [
        ("checkout.paid", paid["id"]),
        ("checkout.cancelled", cancelled["id"]),
        ("checkout.expired", expiring["id"]),
    ]
    assert [e.seq for e in got] == [1, 2, 3]
    assert len({e.event_id for e in got}) == 3


async def test_events_made_while_the_broker_is_down_arrive_after_in_order(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    await until(psp.relay_connected, what="the PSP's relay connected", every=0.02)
    # A persistent session: the broker keeps the subscription and queues for
    # it across its own restart, as a merchant's back office would set it up.
    subscriber = subscribe(events_topic(shop.id), client_id="backoffice", persistent=True)
    before = await psp.checkout(shop, order_id="before")
    await psp.pay(await psp.wallet(), code_of(before))
    (first,) = await asyncio.to_thread(events, subscriber, 1)
    assert first.seq == 1

    await asyncio.to_thread(broker.stop)
    made = []
    for n in range(10):
        checkout = await psp.checkout(shop, order_id=f"during-{n}")
        status, _ = await psp.pay(await psp.wallet(), code_of(checkout))
        assert status == 201  # payments go on while the broker is away
        made.append(checkout["id"])
    _, health = await psp.call("GET", "/healthz")
    assert health["mqtt"] == "disconnected"

    await asyncio.to_thread(broker.start)
    seen = {first.event_id}
    got = await asyncio.to_thread(new_events, subscriber, seen, 10, 20.0)
    assert [e.checkout.id for e in got] == made
    assert [e.seq for e in got] == list(range(2, 12))
    late = await asyncio.to_thread(subscriber.drain, 0.5)
    assert {CheckoutEvent.from_json(m.payload).event_id for m in late} <= seen


async def test_a_psp_started_while_the_broker_is_down_loses_nothing(
    tmp_path: Path, broker: Mosquitto, subscribe: Subscribe
) -> None:
    from tests.support.psp import start_psp, stop_psp

    subscriber = subscribe("scan2pay/v1/m/+/events", client_id="all-events", persistent=True)
    broker.stop()
    psp = await start_psp(str(tmp_path / "late.db"), mqtt_url=broker.url)
    try:
        shop = await psp.merchant()
        checkout = await psp.checkout(shop)
        assert (await psp.pay(await psp.wallet(), code_of(checkout)))[0] == 201
        assert len(await psp.storage.unpublished_events()) == 1
        await asyncio.to_thread(broker.start)
        (event,) = await asyncio.to_thread(events, subscriber, 1, 20.0)
        assert (event.type, event.checkout.id) == ("checkout.paid", checkout["id"])
        await until(psp.outbox_drained, what="every event published", timeout=2, every=0.02)
    finally:
        await stop_psp(psp)


async def test_the_event_payload_is_the_documented_json(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    checkout = await psp.checkout(shop, description="Latte")
    await psp.pay(await psp.wallet(), code_of(checkout))
    (message,) = await asyncio.to_thread(subscriber.wait_for, 1)
    body = json.loads(message.payload)
    assert set(body) == {
        "event_id",
        "seq",
        "type",
        "merchant_id",
        "checkout",
        "created_at",
        "signature",
    }
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert body["checkout"] == now


async def test_events_a_broker_refuses_stay_in_the_outbox(tmp_path: Path, caplog: Any) -> None:
    """An ACL without the relay's write rule: MQTT 5's PUBACK says so, and the
    relay keeps the event instead of marking a dropped one as sent."""
    import logging

    from tests.support.broker import Mosquitto
    from tests.support.psp import start_psp, stop_psp

    caplog.set_level(logging.ERROR, logger="psp_server.outbox.relay")
    # Anonymous clients may read everything and write nothing.
    broker = Mosquitto(tmp_path / "strict", acl="topic read #\n")
    broker.start()
    psp = await start_psp(str(tmp_path / "refused.db"), mqtt_url=broker.url)
    try:
        shop = await psp.merchant()
        checkout = await psp.checkout(shop)
        assert (await psp.pay(await psp.wallet(), code_of(checkout)))[0] == 201
        await until(lambda: "refused" in caplog.text, what="a refusal logged", timeout=4)
        assert "refused 1 event publish" in caplog.text
        assert len(await psp.storage.unpublished_events()) == 1  # not marked sent
    finally:
        await stop_psp(psp)
        broker.stop()


async def test_an_event_goes_to_its_terminals_topic_too_byte_for_byte(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    merchant = subscribe(events_topic(shop.id))
    terminals = subscribe(f"scan2pay/v1/m/{shop.id}/t/+/events")
    wallet = await psp.wallet()
    for_lane = await psp.checkout(shop, order_id="L", terminal_id="lane-1")
    await psp.pay(wallet, code_of(for_lane))
    no_lane = await psp.checkout(shop, order_id="N")
    await psp.pay(wallet, code_of(no_lane))
    first, second = await asyncio.to_thread(merchant.wait_for, 2)
    (copy,) = await asyncio.to_thread(terminals.wait_for, 1)
    assert copy.topic == terminal_events_topic(shop.id, "lane-1")
    assert copy.payload == first.payload
    assert not copy.retain
    assert CheckoutEvent.from_json(second.payload).checkout.id == no_lane["id"]
    assert await asyncio.to_thread(terminals.drain, 0.5) == []  # none for no terminal


def outbox_event(terminal_id: str | None, payload: bytes) -> OutboxEvent:
    return OutboxEvent(1, "evt_1", "mer_1", 1, "checkout.paid", terminal_id, payload)


@pytest.mark.parametrize("terminal_id", [None, "lane/1", "lane+", ""])
def test_an_event_without_a_valid_terminal_goes_to_the_merchant_only(
    terminal_id: str | None,
) -> None:
    event = outbox_event(terminal_id, b'{"checkout": {"terminal_id": "lane-1"}}')
    assert topics_of(event) == [events_topic("mer_1")]


def test_the_merchants_copy_goes_first() -> None:
    event = outbox_event("lane-1", b'{"checkout": {"terminal_id": "lane-1"}}')
    assert topics_of(event) == [events_topic("mer_1"), terminal_events_topic("mer_1", "lane-1")]


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"checkout": {"terminal_id": null}}'])
def test_the_terminal_comes_from_the_row_and_the_payload_is_not_read(payload: bytes) -> None:
    assert topics_of(outbox_event("lane-2", payload)) == [
        events_topic("mer_1"),
        terminal_events_topic("mer_1", "lane-2"),
    ]


async def test_a_refused_terminal_copy_keeps_the_event_in_the_outbox(
    tmp_path: Path, caplog: Any
) -> None:
    """The merchant's copy is accepted and the terminal's refused: the event
    is not marked sent, so the terminal's copy is not lost."""
    import logging

    from tests.support.psp import start_psp, stop_psp

    caplog.set_level(logging.ERROR, logger="psp_server.outbox.relay")
    broker = Mosquitto(
        tmp_path / "strict", acl="topic read #\ntopic write scan2pay/v1/m/+/events\n"
    )
    broker.start()
    psp = await start_psp(str(tmp_path / "refused.db"), mqtt_url=broker.url)
    try:
        shop = await psp.merchant()
        checkout = await psp.checkout(shop, terminal_id="lane-1")
        assert (await psp.pay(await psp.wallet(), code_of(checkout)))[0] == 201
        await until(lambda: "refused" in caplog.text, what="a refusal logged", timeout=4)
        assert "refused 1 event publish" in caplog.text
        assert len(await psp.storage.unpublished_events()) == 1
    finally:
        await stop_psp(psp)
        broker.stop()


async def test_the_relay_routes_by_the_rows_terminal_and_publishes_the_payload_unread(
    psp_with_broker: Psp, db: str, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    checkout = await psp.checkout(shop)  # made for no terminal
    terminals = subscribe(f"scan2pay/v1/m/{shop.id}/t/+/events")
    payload = b'{"not": "an event the relay could read a terminal from"}'
    with connect(db) as conn:
        conn.execute(
            "INSERT INTO events (event_id, merchant_id, seq, type, checkout_id, terminal_id,"
            " payload, created_at) VALUES (?, ?, 100, 'checkout.paid', ?, 'lane-7', ?, 1)",
            ("evt_by_column", shop.id, checkout["id"], payload.decode()),
        )
    (copy,) = await asyncio.to_thread(terminals.wait_for, 1)
    assert copy.topic == terminal_events_topic(shop.id, "lane-7")
    assert copy.payload == payload


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "old.db")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = create_database(server)
    try:
        yield server.dsn(name)
    finally:
        drop_database(server, name)


def test_the_migration_gives_older_events_the_terminal_their_payload_names(
    empty_db: str,
) -> None:
    at_migration(empty_db, "0009_terminal_pairing")
    payloads = {
        "evt_lane": {"checkout": {"id": "co_1", "terminal_id": "lane-1"}},
        "evt_none": {"checkout": {"id": "co_1", "terminal_id": None}},
        "evt_absent": {"checkout": {"id": "co_1"}},
        "evt_number": {"checkout": {"id": "co_1", "terminal_id": 7}},
        "evt_list": [1],
        "evt_broken": "not json {",
    }
    with connect(empty_db) as conn:
        conn.execute(
            "INSERT INTO merchants (id, name, api_key_hash, last_event_seq, created_at)"
            " VALUES ('mer_a', 'A', 'ha', 6, 1)"
        )
        conn.execute(
            "INSERT INTO checkouts (id, merchant_id, order_id, request_hash, amount, currency,"
            " terminal_id, code, qr_url, status, created_at, expires_at, updated_at)"
            " VALUES ('co_1', 'mer_a', 'O-1', 'x', 100, 'EUR', 'lane-1', 'C1', 'HTTP://X/Q/C',"
            " 'paid', 1, 9, 2)"
        )
        for seq, (event_id, body) in enumerate(payloads.items(), start=1):
            payload = body if isinstance(body, str) else json.dumps(body)
            conn.execute(
                "INSERT INTO events (event_id, merchant_id, seq, type, checkout_id, payload,"
                " created_at) VALUES (?, 'mer_a', ?, 'checkout.paid', 'co_1', ?, 2)",
                (event_id, seq, payload),
            )
    if is_postgresql(empty_db):
        postgres.migrate(empty_db)
    else:
        sqlite.migrate(empty_db)
    with connect(empty_db) as conn:
        found = dict(conn.execute("SELECT event_id, terminal_id FROM events").fetchall())
    assert found == {
        "evt_lane": "lane-1",
        "evt_none": None,
        "evt_absent": None,
        "evt_number": None,
        "evt_list": None,
        "evt_broken": None,
    }
