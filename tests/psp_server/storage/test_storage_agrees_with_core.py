"""Where the storage states a rule of the core in SQL, the two agree, on
SQLite and PostgreSQL: a pending checkout is expired from the millisecond
its expires_at comes (``checkout_machine.effective_status``), as the day's
totals count it, the board shows it and the sweeper marks it."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources

import pytest

from psp_server.core.errors import Refusal, Refused
from psp_server.core.machine import Status, effective_status
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.records import Checkout
from psp_server.storage import Storage, open_storage
from psp_server.web import board_rows

URL = "HTTP://127.0.0.1:8080"
NOW = 1_764_000_000_000
LIFETIME_S = 60
# Past, at and before the boundary: now == expires_at + 1, now == expires_at,
# now == expires_at - 1.
EXPIRES_AT = (NOW - 1, NOW, NOW + 1)


@dataclass(frozen=True, slots=True)
class Row:
    """A checkout of the grid: as stored, and what the core says it is at NOW."""

    checkout: Checkout
    stored: Status

    @property
    def effective(self) -> Status:
        return effective_status(self.stored, expires_at=self.checkout.expires_at, now=NOW)


@pytest.fixture
async def storage(db: str) -> AsyncIterator[Storage]:
    opened = await asyncio.to_thread(open_storage, db)
    yield opened
    await opened.close()


async def grid(storage: Storage, merchant_id: str) -> list[Row]:
    """One checkout for each stored status and each expires_at around NOW,
    each brought to its status through the core (a payment, a cancellation,
    an expiry recorded by a cancellation that came too late)."""
    wallet, _ = await storage.create_wallet("w", "EUR", 1_000_000)
    rows: list[Row] = []
    for status in Status:
        for expires_at in EXPIRES_AT:
            created_at = expires_at - LIFETIME_S * 1000
            request = CheckoutRequest(
                f"{status}-{expires_at}", 100 + len(rows), "EUR", None, LIFETIME_S, None
            )
            made, _ = await storage.create_checkout(
                merchant_id, request, public_url=URL, now=created_at
            )
            assert made.expires_at == expires_at
            if status is Status.PAID:
                await storage.pay(wallet.id, made.code, now=created_at)
            elif status is Status.CANCELLED:
                await storage.cancel_checkout(merchant_id, made.id, now=created_at)
            elif status is Status.EXPIRED:
                with pytest.raises(Refused) as refused:
                    await storage.cancel_checkout(merchant_id, made.id, now=expires_at)
                assert refused.value.refusal is Refusal.EXPIRED
            stored = await storage.get_checkout(merchant_id, made.id)
            assert stored is not None
            assert stored.status is status
            rows.append(Row(stored, status))
    return rows


def counted(rows: list[Row]) -> dict[Status, tuple[int, int]]:
    """How many of the rows the core says are in each status, and their amount."""
    count = Counter(row.effective for row in rows)
    amount: Counter[Status] = Counter()
    for row in rows:
        amount[row.effective] += row.checkout.amount
    return {status: (count[status], amount[status]) for status in count}


async def test_a_days_totals_count_each_checkout_in_the_cores_status(storage: Storage) -> None:
    shop, _ = await storage.create_merchant("Shop")
    rows = await grid(storage, shop.id)
    # Each amount is its row's own: the sums say which rows were counted where.
    assert len({row.checkout.amount for row in rows}) == len(rows)

    totals = await storage.day_totals(shop.id, 0, now=NOW)
    assert {t.status: (t.count, t.amount) for t in totals} == counted(rows)
    assert {t.currency for t in totals} == {"EUR"}
    day = await storage.merchant_day(shop.id, 0, now=NOW)
    assert day.totals == totals


async def test_the_board_shows_each_checkout_in_the_cores_status(storage: Storage) -> None:
    shop, _ = await storage.create_merchant("Shop")
    rows = await grid(storage, shop.id)

    day = await storage.merchant_day(shop.id, 0, now=NOW)
    shown = {c.id: board_rows.row(c, NOW)["status"] for c in day.checkouts}
    assert shown == {row.checkout.id: row.effective.value for row in rows}


async def test_the_sweeper_expires_what_the_core_calls_expired_and_nothing_else(
    storage: Storage,
) -> None:
    shop, _ = await storage.create_merchant("Shop")
    rows = await grid(storage, shop.id)
    lapsed = [row for row in rows if row.stored is not row.effective]
    assert [row.checkout.expires_at for row in lapsed] == [NOW - 1, NOW]

    assert await storage.expire_due(now=NOW) == len(lapsed)
    for row in rows:
        after = await storage.get_checkout(shop.id, row.checkout.id)
        assert after is not None
        assert after.status is row.effective, row.checkout.order_id
    assert await storage.expire_due(now=NOW) == 0


def test_the_schema_allows_exactly_the_cores_statuses() -> None:
    schema = (resources.files("psp_server.storage") / "schema" / "0001_initial.sql").read_text()
    found = re.search(r"status\s+TEXT NOT NULL CHECK \(status IN \(([^)]*)\)\)", schema)
    assert found is not None
    assert re.findall(r"'([a-z_]+)'", found.group(1)) == [status.value for status in Status]
