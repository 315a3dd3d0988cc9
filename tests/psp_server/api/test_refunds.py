"""Refunds through a real server: partial and full, never more than was
paid, only of paid checkouts of one's own, in the ledger, announced as
checkout.refunded with the merchant's next seq."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.topics import events_topic
from tests.support.broker import Mosquitto
from tests.support.errors import assert_error
from tests.support.ledger import assert_ledger_holds
from tests.support.mqtt import Subscriber
from tests.support.psp import Merchant, Psp, Wallet, code_of, count_rows

Subscribe = Callable[..., Subscriber]


async def refund(
    psp: Psp, shop: Merchant, checkout_id: str, amount: Any, key: str | None = None
) -> tuple[int, Any]:
    headers = dict(shop.auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await psp.call(
        "POST", f"/v1/checkouts/{checkout_id}/refunds", json={"amount": amount}, headers=headers
    )


async def paid_checkout(psp: Psp, shop: Merchant, wallet: Wallet, **fields: Any) -> dict[str, Any]:
    checkout = await psp.checkout(shop, **{"amount": 1234, **fields})
    status, _ = await psp.pay(wallet, code_of(checkout))
    assert status == 201
    return checkout


async def test_partial_then_full_then_one_more_is_refused(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet(balance=5000)
    checkout = await paid_checkout(psp, shop, wallet)
    db = psp.server.settings.db

    status, first = await refund(psp, shop, checkout["id"], 200)
    assert status == 201
    assert re.fullmatch(r"re_[0-9a-f]{28}", first["id"])
    assert (first["checkout_id"], first["amount"], first["currency"]) == (
        checkout["id"],
        200,
        "EUR",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created_at"])
    assert set(first) == {"id", "checkout_id", "amount", "currency", "created_at"}
    assert await psp.balance(wallet) == 5000 - 1234 + 200
    assert await psp.storage.merchant_balances(shop.id) == {"EUR": 1034}
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert (now["status"], now["refunded_amount"]) == ("paid", 200)
    assert_ledger_holds(db)

    status, rest = await refund(psp, shop, checkout["id"], 1034)
    assert status == 201
    assert rest["id"] != first["id"]
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    # Wholly refunded, and still paid.
    assert (now["status"], now["refunded_amount"]) == ("paid", 1234)
    assert await psp.balance(wallet) == 5000
    assert await psp.storage.merchant_balances(shop.id) == {"EUR": 0}
    assert_ledger_holds(db)

    assert_error(await refund(psp, shop, checkout["id"], 1), 422, "refund_exceeds_payment")
    assert count_rows(psp, "refunds") == 2
    assert await psp.balance(wallet) == 5000
    assert_ledger_holds(db)


async def test_more_than_was_paid_is_refused_and_changes_nothing(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet(balance=5000)
    checkout = await paid_checkout(psp, shop, wallet)
    assert_error(await refund(psp, shop, checkout["id"], 1235), 422, "refund_exceeds_payment")
    assert (await refund(psp, shop, checkout["id"], 1000))[0] == 201
    assert_error(await refund(psp, shop, checkout["id"], 235), 422, "refund_exceeds_payment")
    assert (await refund(psp, shop, checkout["id"], 234))[0] == 201
    assert count_rows(psp, "refunds") == 2
    assert_ledger_holds(psp.server.settings.db)


async def test_only_paid_checkouts_are_refunded(psp: Psp, shop: Merchant) -> None:
    pending = await psp.checkout(shop, order_id="pending")
    cancelled = await psp.checkout(shop, order_id="cancelled")
    await psp.call("POST", f"/v1/checkouts/{cancelled['id']}/cancel", headers=shop.auth)
    expired = await psp.checkout(shop, order_id="expired", expires_in=1)
    psp.pass_expiry(expired)
    for checkout in (pending, cancelled, expired):
        assert_error(await refund(psp, shop, checkout["id"], 1), 409, "not_paid")
    assert count_rows(psp, "refunds") == 0


async def test_another_merchants_checkout_is_not_found(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet()
    checkout = await paid_checkout(psp, shop, wallet)
    other = await psp.merchant("Other")
    assert_error(await refund(psp, other, checkout["id"], 1), 404, "not_found")
    for unknown in ("co_00000000000000000000", "x" * 65, "no%20such"):
        assert_error(await refund(psp, shop, unknown, 1), 404, "not_found")
    assert count_rows(psp, "refunds") == 0
    assert await psp.storage.merchant_balances(shop.id) == {"EUR": 1234}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "missing_field"),
        ({"amount": 1, "reason": "x"}, 422, "unknown_field"),
        ({"amount": 0}, 422, "invalid_amount"),
        ({"amount": -1}, 422, "invalid_amount"),
        ({"amount": 1.5}, 422, "invalid_amount"),
        ({"amount": 1.0}, 422, "invalid_amount"),
        ({"amount": "100"}, 422, "invalid_amount"),
        ({"amount": True}, 422, "invalid_amount"),
        ({"amount": None}, 422, "invalid_amount"),
        ({"amount": 100_000_001}, 422, "amount_too_large"),
        ([{"amount": 1}], 400, "invalid_json"),
    ],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    psp: Psp, shop: Merchant, body: Any, status: int, code: str
) -> None:
    checkout = await paid_checkout(psp, shop, await psp.wallet())
    answer = await psp.call(
        "POST", f"/v1/checkouts/{checkout['id']}/refunds", json=body, headers=shop.auth
    )
    assert_error(answer, status, code)
    assert count_rows(psp, "refunds") == 0


async def test_malformed_and_huge_bodies(psp: Psp, shop: Merchant) -> None:
    checkout = await paid_checkout(psp, shop, await psp.wallet())
    path = f"/v1/checkouts/{checkout['id']}/refunds"
    headers = {**shop.auth, "Content-Type": "application/json"}
    assert_error(await psp.call("POST", path, data=b"{", headers=headers), 400, "invalid_json")
    huge = b'{"amount": 1, "pad": "' + b"x" * 20_000 + b'"}'
    assert_error(await psp.call("POST", path, data=huge, headers=headers), 413, "payload_too_large")
    assert count_rows(psp, "refunds") == 0


async def test_refunds_need_the_merchants_key(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet()
    checkout = await paid_checkout(psp, shop, wallet)
    path = f"/v1/checkouts/{checkout['id']}/refunds"
    for headers in (None, {"Authorization": "Bearer mk_nope"}, wallet.auth):
        answer = await psp.call("POST", path, json={"amount": 1}, headers=headers)
        assert_error(answer, 401, "unauthorized")
    assert count_rows(psp, "refunds") == 0


async def test_refunds_are_in_the_checkouts_currency(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet("KWD", 10_000)
    checkout = await paid_checkout(psp, shop, wallet, currency="KWD", amount=1500)
    status, body = await refund(psp, shop, checkout["id"], 500)
    assert (status, body["currency"]) == (201, "KWD")
    assert await psp.balance(wallet) == 10_000 - 1000
    assert await psp.storage.merchant_balances(shop.id) == {"KWD": 1000}
    assert_ledger_holds(psp.server.settings.db)


# Idempotency keys on refunds.


async def test_a_keyed_refund_is_made_once(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet(balance=5000)
    checkout = await paid_checkout(psp, shop, wallet)
    first = await refund(psp, shop, checkout["id"], 100, key="r-1")
    again = await refund(psp, shop, checkout["id"], 100, key="r-1")
    assert first == again
    assert first[0] == 201
    assert count_rows(psp, "refunds") == 1
    assert_error(
        await refund(psp, shop, checkout["id"], 101, key="r-1"), 422, "idempotency_mismatch"
    )
    # One key for another checkout's refund is a mismatch too, not a second refund.
    other = await paid_checkout(psp, shop, wallet, order_id="other")
    assert_error(await refund(psp, shop, other["id"], 100, key="r-1"), 422, "idempotency_mismatch")
    # Without a key, the same request is a new refund: partial refunds may repeat.
    assert (await refund(psp, shop, checkout["id"], 100))[0] == 201
    assert count_rows(psp, "refunds") == 2
    assert_ledger_holds(psp.server.settings.db)


async def test_a_refused_keyed_refund_is_replayed(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    refused = await refund(psp, shop, checkout["id"], 100, key="early")
    assert_error(refused, 409, "not_paid")
    await psp.pay(await psp.wallet(), code_of(checkout))
    assert await refund(psp, shop, checkout["id"], 100, key="early") == refused
    assert (await refund(psp, shop, checkout["id"], 100, key="later"))[0] == 201


async def test_concurrent_refunds_with_one_key_refund_once(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet(balance=5000)
    checkout = await paid_checkout(psp, shop, wallet)
    answers = await asyncio.gather(
        *(refund(psp, shop, checkout["id"], 100, key="same") for _ in range(10))
    )
    made = {body["id"] for status, body in answers if status == 201}
    assert len(made) == 1
    for status, body in answers:
        assert status == 201 or (status, body["error"]["code"]) == (409, "request_in_progress")
    assert count_rows(psp, "refunds") == 1
    assert await psp.balance(wallet) == 5000 - 1234 + 100
    assert_ledger_holds(psp.server.settings.db)


async def test_racing_refunds_never_add_up_to_more_than_was_paid(psp: Psp, shop: Merchant) -> None:
    wallet = await psp.wallet(balance=5000)
    checkout = await paid_checkout(psp, shop, wallet)
    answers = await asyncio.gather(*(refund(psp, shop, checkout["id"], 200) for _ in range(10)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 6 + [422] * 4
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert now["refunded_amount"] == 1200
    assert await psp.balance(wallet) == 5000 - 1234 + 1200
    assert_ledger_holds(psp.server.settings.db)


# The event.


async def test_each_refund_is_announced_with_the_next_seq(
    psp_with_broker: Psp, broker: Mosquitto, subscribe: Subscribe
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = subscribe(events_topic(shop.id))
    checkout = await paid_checkout(psp, shop, await psp.wallet(balance=5000))
    await refund(psp, shop, checkout["id"], 234)
    await refund(psp, shop, checkout["id"], 1000)
    messages = await asyncio.to_thread(subscriber.wait_for, 3, 10.0)
    events = [CheckoutEvent.from_json(m.payload) for m in messages]
    assert [(e.seq, e.type) for e in events] == [
        (1, "checkout.paid"),
        (2, "checkout.refunded"),
        (3, "checkout.refunded"),
    ]
    assert [(e.checkout.status, e.checkout.refunded_amount) for e in events] == [
        ("paid", 0),
        ("paid", 234),
        ("paid", 1234),
    ]
    assert len({e.event_id for e in events}) == 3
    # The last event's checkout is the API's checkout.
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert json.loads(messages[-1].payload)["checkout"] == now
    # A refused refund announces nothing.
    assert_error(await refund(psp, shop, checkout["id"], 1), 422, "refund_exceeds_payment")
    assert await asyncio.to_thread(subscriber.drain, 0.5) == []


async def test_the_storage_refund_call_says_no_as_the_api_does(psp: Psp, shop: Merchant) -> None:
    from psp_server.core.errors import Refused
    from scan2pay_common.timefmt import now_ms

    checkout = await psp.checkout(shop)
    with pytest.raises(Refused) as refused:
        await psp.storage.refund(shop.id, checkout["id"], 1, now=now_ms())
    assert refused.value.code == "not_paid"
    await psp.pay(await psp.wallet(), code_of(checkout))
    made, refunded = await psp.storage.refund(shop.id, checkout["id"], 34, now=now_ms())
    assert (made.amount, made.checkout_id) == (34, checkout["id"])
    assert (refunded.status.value, refunded.refunded_amount) == ("paid", 34)
    with pytest.raises(Refused) as refused:
        await psp.storage.refund("mer_other", checkout["id"], 1, now=now_ms())
    assert refused.value.code == "not_found"
    assert_ledger_holds(psp.server.settings.db)
