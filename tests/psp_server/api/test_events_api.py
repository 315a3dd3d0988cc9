"""GET /v1/events: a merchant catches up from its cursor, page by page, on
exactly the events the relay publishes, published yet or not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.topics import events_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.psp import Merchant, Psp, code_of

Subscribe = Callable[..., Subscriber]


async def page(psp: Psp, shop: Merchant, query: str = "") -> dict[str, Any]:
    status, body = await psp.call("GET", f"/v1/events{query}", headers=shop.auth)
    assert status == 200, body
    assert set(body) == {"events", "next_after"}
    found: dict[str, Any] = body
    return found


async def make_events(psp: Psp, shop: Merchant, n: int) -> list[str]:
    """``n`` events, one cancelled checkout each; returns the checkout ids."""
    made = []
    for i in range(n):
        checkout = await psp.checkout(shop, order_id=f"E-{i}")
        status, _ = await psp.call(
            "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth
        )
        assert status == 200
        made.append(checkout["id"])
    return made


async def test_no_events_yet(psp: Psp, shop: Merchant) -> None:
    assert await page(psp, shop) == {"events": [], "next_after": 0}
    assert await page(psp, shop, "?after=41") == {"events": [], "next_after": 41}


async def test_pages_follow_the_cursor_in_seq_order(psp: Psp, shop: Merchant) -> None:
    made = await make_events(psp, shop, 7)
    seen: list[dict[str, Any]] = []
    after = 0
    sizes = []
    while True:
        got = await page(psp, shop, f"?after={after}&limit=3")
        if not got["events"]:
            assert got["next_after"] == after
            break
        sizes.append(len(got["events"]))
        seen += got["events"]
        after = got["next_after"]
        assert after == got["events"][-1]["seq"]
    assert sizes == [3, 3, 1]
    assert [e["seq"] for e in seen] == list(range(1, 8))
    assert [e["checkout"]["id"] for e in seen] == made
    for event in seen:
        CheckoutEvent.from_json(json.dumps(event))  # each is a valid event
        assert event["type"] == "checkout.cancelled"
    # Any cursor works, not only page boundaries.
    assert [e["seq"] for e in (await page(psp, shop, "?after=5"))["events"]] == [6, 7]


async def test_the_default_limit_is_100_and_the_largest_1000(psp: Psp, shop: Merchant) -> None:
    for n in range(101):
        last = await psp.checkout(shop, order_id=f"X-{n}", expires_in=1)
    psp.pass_expiry(last)
    for _ in range(100):  # the sweeper turns each into a checkout.expired event
        await asyncio.sleep(0.05)
        if len((await page(psp, shop, "?after=100"))["events"]) == 1:
            break
    first = await page(psp, shop)
    assert len(first["events"]) == 100
    assert first["next_after"] == 100
    everything = await page(psp, shop, "?limit=1000")
    assert [e["seq"] for e in everything["events"]] == list(range(1, 102))
    assert {e["type"] for e in everything["events"]} == {"checkout.expired"}


async def test_only_the_merchants_own_events(psp: Psp, shop: Merchant) -> None:
    other = await psp.merchant("Other")
    await make_events(psp, shop, 2)
    theirs = await make_events(psp, other, 1)
    mine = await page(psp, shop)
    assert {e["merchant_id"] for e in mine["events"]} == {shop.id}
    assert [e["seq"] for e in mine["events"]] == [1, 2]
    got = await page(psp, other)
    assert [(e["seq"], e["checkout"]["id"]) for e in got["events"]] == [(1, theirs[0])]


async def test_paid_and_refunded_events_carry_their_checkout(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=1000)
    await psp.pay(await psp.wallet(), code_of(checkout))
    await psp.call(
        "POST",
        f"/v1/checkouts/{checkout['id']}/refunds",
        json={"amount": 300},
        headers=shop.auth,
    )
    events = (await page(psp, shop))["events"]
    assert [(e["seq"], e["type"], e["checkout"]["refunded_amount"]) for e in events] == [
        (1, "checkout.paid", 0),
        (2, "checkout.refunded", 300),
    ]
    assert {e["checkout"]["status"] for e in events} == {"paid"}


async def test_events_are_exactly_the_published_bytes(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    checkout = await psp.checkout(shop, description="Café ☕")
    await psp.pay(await psp.wallet(), code_of(checkout))
    await psp.call(
        "POST", f"/v1/checkouts/{checkout['id']}/refunds", json={"amount": 1}, headers=shop.auth
    )
    await make_events(psp, shop, 1)
    published = [m.payload for m in await asyncio.to_thread(subscriber.wait_for, 3, 10.0)]
    async with psp.http.get(psp.url + "/v1/events", headers=shop.auth) as response:
        raw = await response.read()
    assert raw == b'{"events":[' + b",".join(published) + b'],"next_after":3}'


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?after=-1", "invalid_after"),
        ("?after=abc", "invalid_after"),
        ("?after=1.5", "invalid_after"),
        ("?after=", "invalid_after"),
        ("?after=%2B1", "invalid_after"),
        ("?after=1&after=2", "invalid_after"),
        ("?after=99999999999999999999", "invalid_after"),
        ("?limit=0", "invalid_limit"),
        ("?limit=1001", "invalid_limit"),
        ("?limit=ten", "invalid_limit"),
        ("?limit=", "invalid_limit"),
        ("?cursor=3", "unknown_parameter"),
        ("?after=1&since=2", "unknown_parameter"),
    ],
)
async def test_bad_parameters_are_422(psp: Psp, shop: Merchant, query: str, code: str) -> None:
    status, body = await psp.call("GET", f"/v1/events{query}", headers=shop.auth)
    assert (status, body["error"]["code"]) == (422, code), body


@pytest.mark.parametrize(
    "headers", [None, {"Authorization": "Bearer mk_nope"}, {"Authorization": "Basic x"}]
)
async def test_events_need_the_merchants_key(psp: Psp, headers: dict[str, str] | None) -> None:
    status, body = await psp.call("GET", "/v1/events", headers=headers)
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_wallet_token_reads_no_events(psp: Psp) -> None:
    wallet = await psp.wallet()
    status, _ = await psp.call("GET", "/v1/events", headers=wallet.auth)
    assert status == 401
