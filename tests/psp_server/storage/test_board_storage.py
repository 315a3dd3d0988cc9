"""The storage reads behind the merchant's board, on SQLite and PostgreSQL:
a day's checkouts and totals, the changes after an event cursor, the
checkouts created in a recent window, and the key hash a session binds to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from psp_server.core import credentials
from psp_server.core.errors import Refused
from psp_server.core.machine import Status
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.records import StatusTotal
from psp_server.storage import Storage, open_storage

URL = "HTTP://127.0.0.1:8080"
HOUR = 3_600_000
# A fixed day: the ops take their times from the caller.
MIDNIGHT = 1_764_000_000_000


@pytest.fixture
async def storage(db: str) -> AsyncIterator[Storage]:
    opened = await asyncio.to_thread(open_storage, db)
    yield opened
    await opened.close()


def order(
    order_id: str, amount: int, currency: str = "EUR", expires_in: int = 300
) -> CheckoutRequest:
    return CheckoutRequest(order_id, amount, currency, "lane-1", expires_in, None)


async def test_a_day_is_its_newest_checkouts_and_the_totals_of_all(storage: Storage) -> None:
    shop, _ = await storage.create_merchant("Shop")
    other, _ = await storage.create_merchant("Other")
    wallet, _ = await storage.create_wallet("w", "EUR", 100_000)
    now = MIDNIGHT + 4 * HOUR + 60_000  # A-4 still pending, A-3 past its expiry
    # Yesterday's does not count; another merchant's neither.
    await storage.create_checkout(shop.id, order("Y-1", 999), public_url=URL, now=MIDNIGHT - 1)
    await storage.create_checkout(other.id, order("O-1", 777), public_url=URL, now=now)
    made = []
    for n in range(5):
        checkout, _ = await storage.create_checkout(
            shop.id, order(f"A-{n}", 100 * (n + 1)), public_url=URL, now=MIDNIGHT + n * HOUR
        )
        made.append(checkout)
    await storage.create_checkout(shop.id, order("J-1", 500, "JPY"), public_url=URL, now=now)
    await storage.pay(wallet.id, made[0].code, now=MIDNIGHT + 1)
    await storage.pay(wallet.id, made[1].code, now=MIDNIGHT + HOUR + 1)
    await storage.refund(shop.id, made[1].id, 50, now=MIDNIGHT + HOUR + 2)
    await storage.cancel_checkout(shop.id, made[2].id, now=MIDNIGHT + 2 * HOUR + 1)
    # made[3] ran out of time without the sweeper marking it: expired all the same.

    day = await storage.merchant_day(shop.id, MIDNIGHT, now=now, limit=3)
    assert [c.order_id for c in day.checkouts] == ["J-1", "A-4", "A-3"]
    assert day.event_seq == 4  # two payments, a refund, a cancellation
    assert day.totals == [
        StatusTotal("EUR", Status.CANCELLED, 1, 300, 0),
        StatusTotal("EUR", Status.EXPIRED, 1, 400, 0),
        StatusTotal("EUR", Status.PAID, 2, 300, 50),
        StatusTotal("EUR", Status.PENDING, 1, 500, 0),
        StatusTotal("JPY", Status.PENDING, 1, 500, 0),
    ]
    assert await storage.day_totals(shop.id, MIDNIGHT, now=now) == day.totals
    assert wallet.currency == "EUR"

    empty = await storage.merchant_day(shop.id, now + 1, now=now)
    assert (empty.checkouts, empty.totals) == ([], [])


async def test_changes_are_the_events_after_the_cursor_and_the_recent_checkouts(
    storage: Storage,
) -> None:
    shop, _ = await storage.create_merchant("Shop")
    wallet, _ = await storage.create_wallet("w", "EUR", 100_000)
    old, _ = await storage.create_checkout(shop.id, order("OLD", 100), public_url=URL, now=1000)
    first, _ = await storage.create_checkout(
        shop.id, order("A-1", 200), public_url=URL, now=MIDNIGHT
    )
    day = await storage.merchant_day(shop.id, MIDNIGHT - HOUR, now=MIDNIGHT)
    cursor = day.event_seq

    nothing = await storage.board_changes(shop.id, after_seq=cursor, created_since=MIDNIGHT + 1)
    assert (nothing.changed, nothing.created, nothing.event_seq) == ([], [], cursor)

    second, _ = await storage.create_checkout(
        shop.id, order("A-2", 300), public_url=URL, now=MIDNIGHT + 5
    )
    await storage.pay(wallet.id, first.code, now=MIDNIGHT + 10)
    with pytest.raises(Refused, match="expired"):  # yet it records the expiry: an event
        await storage.cancel_checkout(shop.id, old.id, now=MIDNIGHT + 11)
    changes = await storage.board_changes(shop.id, after_seq=cursor, created_since=MIDNIGHT)
    # The events' checkouts as they are now, whenever they were created:
    # the caller keeps the day's.
    assert [(c.id, c.status) for c in changes.changed] == [
        (first.id, Status.PAID),
        (old.id, Status.EXPIRED),
    ]
    assert [c.id for c in changes.created] == [second.id, first.id]  # newest first
    assert changes.event_seq == cursor + 2
    assert not changes.more

    await storage.cancel_checkout(shop.id, second.id, now=MIDNIGHT + 20)
    limited = await storage.board_changes(
        shop.id, after_seq=cursor, created_since=MIDNIGHT + 6, limit=1
    )
    assert [c.order_id for c in limited.changed] == ["A-1"]
    assert limited.more
    assert limited.event_seq == cursor + 1
    rest = await storage.board_changes(
        shop.id, after_seq=limited.event_seq, created_since=MIDNIGHT + 6
    )
    assert [(c.order_id, c.status) for c in rest.changed] == [
        ("OLD", Status.EXPIRED),
        ("A-2", Status.CANCELLED),
    ]
    assert rest.created == []


async def test_the_key_hash_a_session_binds_to_follows_rotation(storage: Storage) -> None:
    shop, key = await storage.create_merchant("Shop")
    found = await storage.merchant_with_key_hash(shop.id)
    assert found == (shop, credentials.hash_secret(key), 0)
    new_key = await storage.replace_secret("merchant", shop.id, revoke=False)
    assert new_key is not None
    assert await storage.merchant_with_key_hash(shop.id) == (
        shop,
        credentials.hash_secret(new_key),
        0,
    )
    await storage.end_sessions(shop.id)
    ended = await storage.merchant_with_key_hash(shop.id)
    assert ended == (shop, credentials.hash_secret(new_key), 1)
    await storage.replace_secret("merchant", shop.id, revoke=True)
    revoked = await storage.merchant_with_key_hash(shop.id)
    assert revoked is not None
    assert revoked[1].startswith("revoked:")
    assert await storage.merchant_with_key_hash("mer_nobody") is None
