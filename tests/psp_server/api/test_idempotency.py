"""Idempotency keys through a real server: a retry with the same key gets
the first answer byte for byte and does no work again, a key reused for
another request is refused, a key still in flight is refused, and the
stored answers outlive the process."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from psp_server.api.appkeys import IN_FLIGHT
from tests.support.db import connect as db_connect
from tests.support.gate import gated
from tests.support.ledger import assert_ledger_holds
from tests.support.process import PspProcess, create_merchant, create_wallet
from tests.support.psp import Merchant, Psp, Wallet, code_of, count_rows


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"


async def send(
    http: aiohttp.ClientSession,
    url: str,
    *,
    auth: dict[str, str],
    key: str | None = None,
    body: Any = None,
    data: bytes | None = None,
) -> Raw:
    headers = CIMultiDict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with http.post(url, json=body, data=data, headers=headers) as response:
        return Raw(response.status, dict(response.headers), await response.read())


CHECKOUT = {"order_id": "I-1", "amount": 1234, "currency": "EUR"}


async def create(psp: Psp, shop: Merchant, key: str | None, body: Any = None) -> Raw:
    return await send(
        psp.http,
        psp.url + "/v1/checkouts",
        auth=shop.auth,
        key=key,
        body=CHECKOUT if body is None else body,
    )


async def pay(psp: Psp, wallet: Wallet, key: str | None, code: str) -> Raw:
    return await send(
        psp.http, psp.url + "/v1/payments", auth=wallet.auth, key=key, body={"code": code}
    )


# Replays.


async def test_a_retry_replays_the_first_answer_byte_for_byte(psp: Psp, shop: Merchant) -> None:
    first = await create(psp, shop, "key-1")
    assert first.status == 201
    assert not first.replayed
    again = await create(psp, shop, "key-1")
    assert (again.status, again.body) == (first.status, first.body)
    assert again.replayed
    assert again.headers["Content-Type"].startswith("application/json")
    assert count_rows(psp, "checkouts") == 1


async def test_the_replay_is_the_first_answer_not_the_current_state(
    psp: Psp, shop: Merchant
) -> None:
    first = await create(psp, shop, "key-1")
    assert (await psp.pay(await psp.wallet(), code_of(first.json)))[0] == 201
    again = await create(psp, shop, "key-1")
    assert (again.status, again.body) == (201, first.body)
    assert again.json["status"] == "pending"
    # Without the key, the order_id rule answers with the checkout as it is now.
    _, now = await psp.call("POST", "/v1/checkouts", json=CHECKOUT, headers=shop.auth)
    assert now["status"] == "paid"


async def test_the_same_request_written_differently_is_the_same_request(
    psp: Psp, shop: Merchant
) -> None:
    first = await create(psp, shop, "k")
    respaced = b'{ "currency" : "EUR", "amount": 1234, "order_id": "I-1", "expires_in": 300 }'
    again = await send(psp.http, psp.url + "/v1/checkouts", auth=shop.auth, key="k", data=respaced)
    assert (again.status, again.body, again.replayed) == (201, first.body, True)


async def test_a_key_reused_for_another_request_is_422_and_changes_nothing(
    psp: Psp, shop: Merchant
) -> None:
    await create(psp, shop, "k")
    for other in ({**CHECKOUT, "amount": 1235}, {**CHECKOUT, "order_id": "I-2"}):
        answer = await create(psp, shop, "k", other)
        assert answer.status == 422
        assert answer.json["error"]["code"] == "idempotency_mismatch"
    assert count_rows(psp, "checkouts") == 1


async def test_keys_are_scoped_to_their_caller_and_endpoint(psp: Psp, shop: Merchant) -> None:
    other = await psp.merchant("Other")
    mine = await create(psp, shop, "shared")
    theirs = await create(psp, other, "shared")
    assert (mine.status, theirs.status) == (201, 201)
    assert mine.json["id"] != theirs.json["id"]
    # The same key on the payment endpoint is another key.
    paid = await pay(psp, await psp.wallet(), "shared", code_of(mine.json))
    assert (paid.status, paid.replayed) == (201, False)


async def test_a_refusal_by_the_rules_is_stored_and_replayed(psp: Psp, shop: Merchant) -> None:
    """As Stripe does: a 402 for a key stays the answer to that key, even
    after the wallet could pay."""
    wallet = await psp.wallet(balance=1234)
    spent = await psp.checkout(shop, order_id="spent")
    assert (await pay(psp, wallet, None, code_of(spent))).status == 201
    wanted = await psp.checkout(shop, order_id="wanted")
    refused = await pay(psp, wallet, "pay-1", code_of(wanted))
    assert refused.status == 402
    assert refused.json["error"]["code"] == "insufficient_funds"

    refund = await send(
        psp.http,
        f"{psp.url}/v1/checkouts/{spent['id']}/refunds",
        auth=shop.auth,
        body={"amount": 1234},
    )
    assert refund.status == 201  # the wallet holds 1234 again
    again = await pay(psp, wallet, "pay-1", code_of(wanted))
    assert (again.status, again.body, again.replayed) == (402, refused.body, True)
    assert count_rows(psp, "payments") == 1
    fresh = await pay(psp, wallet, "pay-2", code_of(wanted))
    assert fresh.status == 201
    assert_ledger_holds(psp.server.settings.db)


async def test_an_order_conflict_is_replayed_too(psp: Psp, shop: Merchant) -> None:
    await create(psp, shop, None)
    conflict = await create(psp, shop, "k", {**CHECKOUT, "amount": 1})
    assert conflict.status == 409
    assert conflict.json["error"]["code"] == "order_conflict"
    again = await create(psp, shop, "k", {**CHECKOUT, "amount": 1})
    assert (again.status, again.body, again.replayed) == (409, conflict.body, True)


async def test_bad_input_stores_nothing_not_even_the_key(psp: Psp, shop: Merchant) -> None:
    bad = await create(psp, shop, "k", {**CHECKOUT, "amount": 0})
    assert bad.status == 422
    assert bad.json["error"]["code"] == "invalid_amount"
    broken = await send(psp.http, psp.url + "/v1/checkouts", auth=shop.auth, key="k", data=b"{")
    assert broken.status == 400
    assert count_rows(psp, "idempotency_keys") == 0
    good = await create(psp, shop, "k")
    assert (good.status, good.replayed) == (201, False)


async def test_a_server_error_is_not_stored_and_its_work_is_undone(
    psp: Psp, shop: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psp_server.api.payments as payments

    checkout = await psp.checkout(shop)
    wallet = await psp.wallet(balance=5000)
    shape = payments.payment_json

    def broken(result: Any) -> Any:
        raise RuntimeError("a bug while shaping the answer")

    monkeypatch.setattr(payments, "payment_json", broken)
    failed = await pay(psp, wallet, "k", code_of(checkout))
    assert failed.status == 500
    assert count_rows(psp, "payments") == 0
    assert count_rows(psp, "idempotency_keys") == 0
    assert await psp.balance(wallet) == 5000

    monkeypatch.setattr(payments, "payment_json", shape)
    retried = await pay(psp, wallet, "k", code_of(checkout))
    assert (retried.status, retried.replayed) == (201, False)
    assert count_rows(psp, "payments") == 1
    assert_ledger_holds(psp.server.settings.db)


# The header itself.


async def raw_post(psp: Psp, path: str, headers: list[bytes], body: bytes) -> Raw:
    """One request written byte by byte: HTTP clients refuse to send some
    of the header values a server must still refuse."""
    host, port = psp.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [f"POST {path} HTTP/1.1".encode(), f"Host: {host}".encode(), b"Connection: close"]
    head += [*headers, b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    fields = dict(
        line.decode("latin-1").split(": ", 1) for line in header_block.split(b"\r\n") if line
    )
    return Raw(int(status_line.split()[1]), fields, payload)


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "café", "tab\there", "del\x7fhere", "nul\x00"],
    ids=["empty", "256", "non-ascii", "tab", "del", "nul"],
)
async def test_a_malformed_key_is_400_and_changes_nothing(
    psp: Psp, shop: Merchant, key: str
) -> None:
    headers = [f"Authorization: Bearer {shop.key}".encode(), b"Idempotency-Key: " + key.encode()]
    answer = await raw_post(psp, "/v1/checkouts", headers, json.dumps(CHECKOUT).encode())
    assert answer.status == 400, answer.body
    if answer.headers.get("Content-Type", "").startswith("application/json"):
        assert answer.json["error"]["code"] == "invalid_idempotency_key"
    else:
        # The HTTP parser itself refused the request before any handler ran.
        assert key in ("del\x7fhere", "nul\x00"), answer
    assert count_rows(psp, "checkouts") == 0
    assert count_rows(psp, "idempotency_keys") == 0


async def test_the_longest_key_and_odd_printable_characters_are_fine(
    psp: Psp, shop: Merchant
) -> None:
    for n, key in enumerate(["x" * 255, "a b ~!@#$%^&*()", "5f0c1a2b-3c4d-4e6f-8a8b"]):
        answer = await create(psp, shop, key, {**CHECKOUT, "order_id": f"K-{n}"})
        assert answer.status == 201, answer.body
        assert (await create(psp, shop, key, {**CHECKOUT, "order_id": f"K-{n}"})).replayed


async def test_a_key_given_twice_is_400(psp: Psp, shop: Merchant) -> None:
    headers = CIMultiDict(shop.auth)
    headers.add("Idempotency-Key", "a")
    headers.add("Idempotency-Key", "b")
    async with psp.http.post(psp.url + "/v1/checkouts", json=CHECKOUT, headers=headers) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_idempotency_key"
    assert count_rows(psp, "checkouts") == 0


async def test_who_is_asking_comes_before_a_bad_key(psp: Psp) -> None:
    for path in ("/v1/checkouts", "/v1/payments"):
        answer = await send(
            psp.http, psp.url + path, auth={"Authorization": "Bearer nope"}, key="", body={}
        )
        assert answer.status == 401, path


# In flight.


async def test_a_key_in_flight_is_409_and_the_first_request_finishes(
    psp: Psp, shop: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gated(psp, "create_checkout_reply", monkeypatch) as gate:
        first = asyncio.create_task(create(psp, shop, "slow"))
        await gate.wait_entered()
        assert (shop.id, "POST /v1/checkouts", "slow") in psp.server.app[IN_FLIGHT]
        second = await create(psp, shop, "slow")
        assert second.status == 409
        assert second.json["error"]["code"] == "request_in_progress"
        # While the first is in flight its body is not yet known to be the
        # key's: another body is told to wait too.
        mismatched = await create(psp, shop, "slow", {**CHECKOUT, "amount": 1})
        assert mismatched.status == 409
        gate.opened.set()
        done = await first
    assert (done.status, done.replayed) == (201, False)
    assert (shop.id, "POST /v1/checkouts", "slow") not in psp.server.app[IN_FLIGHT]
    third = await create(psp, shop, "slow")
    assert (third.status, third.body, third.replayed) == (201, done.body, True)
    assert count_rows(psp, "checkouts") == 1


async def test_concurrent_payments_with_one_key_pay_once(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=100)
    wallet = await psp.wallet(balance=10_000)
    answers = await asyncio.gather(
        *(pay(psp, wallet, "same", code_of(checkout)) for _ in range(12))
    )
    firsts = [a for a in answers if a.status == 201 and not a.replayed]
    assert len(firsts) == 1
    for answer in answers:
        if answer.status == 201:
            assert answer.body == firsts[0].body
        else:
            assert answer.status == 409
            assert answer.json["error"]["code"] == "request_in_progress"
    assert count_rows(psp, "payments") == 1
    assert await psp.balance(wallet) == 9_900
    assert_ledger_holds(psp.server.settings.db)


# Durability and retention.


async def test_stored_answers_survive_a_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key = create_merchant(db)["api_key"]
    token = create_wallet(db)["token"]
    merchant = {"Authorization": f"Bearer {key}"}
    wallet = {"Authorization": f"Bearer {token}"}
    server = PspProcess(db)
    try:
        async with aiohttp.ClientSession() as http:
            made = await send(
                http, server.url + "/v1/checkouts", auth=merchant, key="c", body=CHECKOUT
            )
            paid = await send(
                http,
                server.url + "/v1/payments",
                auth=wallet,
                key="p",
                body={"code": code_of(made.json)},
            )
            assert (made.status, paid.status) == (201, 201)
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    server = PspProcess(db)
    try:
        async with aiohttp.ClientSession() as http:
            made_again = await send(
                http, server.url + "/v1/checkouts", auth=merchant, key="c", body=CHECKOUT
            )
            paid_again = await send(
                http,
                server.url + "/v1/payments",
                auth=wallet,
                key="p",
                body={"code": code_of(made.json)},
            )
    finally:
        server.stop()
    assert (made_again.status, made_again.body, made_again.replayed) == (201, made.body, True)
    assert (paid_again.status, paid_again.body, paid_again.replayed) == (201, paid.body, True)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 1
    assert_ledger_holds(str(db))


async def test_purge_removes_only_keys_older_than_asked(psp: Psp, shop: Merchant) -> None:
    for n in range(3):
        await create(psp, shop, f"k{n}", {**CHECKOUT, "order_id": f"P-{n}"})
    with db_connect(psp.server.settings.db) as conn:
        stamps = sorted(t for (t,) in conn.execute("SELECT created_at FROM idempotency_keys"))
    assert await psp.storage.purge_idempotency_keys(stamps[0]) == 0
    assert await psp.storage.purge_idempotency_keys(stamps[-1] + 1, limit=2) == 2
    assert await psp.storage.purge_idempotency_keys(stamps[-1] + 1) == 1
    assert count_rows(psp, "idempotency_keys") == 0
    # A purged key runs again; the order_id rule still keeps it from making a second checkout.
    again = await create(psp, shop, "k0", {**CHECKOUT, "order_id": "P-0"})
    assert (again.status, again.replayed) == (200, False)
    assert count_rows(psp, "checkouts") == 3


def test_keys_are_kept_at_least_a_day() -> None:
    from psp_server.storage.base import IDEMPOTENCY_KEY_TTL_MS

    assert IDEMPOTENCY_KEY_TTL_MS >= 24 * 60 * 60 * 1000
