"""Pairings and paired terminals in the database, on SQLite and PostgreSQL
alike (the ``db`` fixture): the claim, complete, collect-once and unpair
steps, and every refusal leaving the rows as they were."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from psp_server.pairing.store import (
    PURGE_AFTER_MS,
    Collected,
    Paired,
    PairedTerminal,
    PairingRefused,
    PairingStore,
    Pending,
    Revoked,
)
from psp_server.storage import Storage, open_storage
from psp_server.storage.sql_storage import SqlStorage

NOW = 1_764_000_000_000
TTL = 600_000
SECRET = hashlib.sha256(b"device").hexdigest()
CODE = hashlib.sha256(b"ABCDEFGHJK").hexdigest()


@pytest.fixture
async def storage(db: str) -> AsyncIterator[Storage]:
    opened = await asyncio.to_thread(open_storage, db)
    yield opened
    await opened.close()


async def _rows(storage: Storage) -> dict[str, list[Any]]:
    assert isinstance(storage, SqlStorage)

    def op(conn: Any) -> dict[str, list[Any]]:
        return {
            "pairings": sorted(conn.execute("SELECT * FROM pairings").fetchall()),
            "paired_terminals": sorted(conn.execute("SELECT * FROM paired_terminals").fetchall()),
        }

    return await storage.worker.read(op)


async def _refused(code: str, call: Any, storage: Storage) -> None:
    before = await _rows(storage)
    with pytest.raises(PairingRefused) as refused:
        await call
    assert refused.value.code == code
    assert await _rows(storage) == before


async def test_a_pairing_from_start_to_unpairing(storage: Storage) -> None:
    merchant, _ = await storage.create_merchant("Shop")
    store = PairingStore.of(storage)
    assert await store.start("pair_1", CODE, SECRET, now=NOW, expires_at=NOW + TTL)
    assert await store.poll("pair_1", SECRET, now=NOW) == Pending(NOW + TTL)
    claimed = await store.claim(CODE, merchant.id, "lane-1", now=NOW + 1)
    assert claimed == "pair_1"
    assert await store.poll("pair_1", SECRET, now=NOW + 2) == Pending(NOW + TTL)  # approving
    await store.complete("pair_1", "the-password", collect_by=NOW + 2 + TTL)
    assert await store.terminals(merchant.id) == [PairedTerminal("lane-1", NOW + 1, False)]
    await _refused("wrong_device_secret", store.poll("pair_1", "0" * 64, now=NOW + 3), storage)
    assert await store.poll("pair_1", SECRET, now=NOW + 3) == Collected(
        merchant.id, "lane-1", "the-password"
    )
    assert await store.poll("pair_1", SECRET, now=NOW + 4) == Paired(merchant.id, "lane-1")
    assert "the-password" not in repr(await _rows(storage))
    assert await store.terminals(merchant.id) == [PairedTerminal("lane-1", NOW + 1, True)]
    assert await store.is_paired(merchant.id, "lane-1")
    assert await store.unpair(merchant.id, "lane-1", now=NOW + 5)
    assert await store.poll("pair_1", SECRET, now=NOW + 6) == Revoked()
    assert not await store.unpair(merchant.id, "lane-1", now=NOW + 7)
    assert await store.terminals(merchant.id) == []
    # The id is free again for a new pairing.
    assert await store.start("pair_2", CODE[::-1], SECRET, now=NOW, expires_at=NOW + TTL)
    assert await store.claim(CODE[::-1], merchant.id, "lane-1", now=NOW + 8) == "pair_2"


async def test_claims_refused_change_nothing(storage: Storage) -> None:
    a, _ = await storage.create_merchant("A")
    b, _ = await storage.create_merchant("B")
    store = PairingStore.of(storage)
    other = hashlib.sha256(b"other").hexdigest()
    await store.start("pair_1", CODE, SECRET, now=NOW, expires_at=NOW + TTL)
    await store.start("pair_2", other, SECRET, now=NOW, expires_at=NOW + TTL)
    await _refused("unknown_code", store.claim("f" * 64, a.id, "lane-1", now=NOW), storage)
    await _refused("code_expired", store.claim(CODE, a.id, "lane-1", now=NOW + TTL), storage)
    await _refused("unknown_merchant", store.claim(CODE, "mer_nobody", "lane-1", now=NOW), storage)
    assert await store.claim(CODE, a.id, "lane-1", now=NOW) == "pair_1"
    await _refused("code_used", store.claim(CODE, a.id, "lane-2", now=NOW), storage)
    await _refused("terminal_taken", store.claim(other, a.id, "lane-1", now=NOW), storage)
    # Terminal ids are the merchant's own: B may have a lane-1 too.
    assert await store.claim(other, b.id, "lane-1", now=NOW) == "pair_2"
    # A claim undone (the broker account could not be made) is pending again.
    await store.release("pair_1")
    assert await store.poll("pair_1", SECRET, now=NOW) == Pending(NOW + TTL)
    assert await store.claim(CODE, a.id, "lane-1", now=NOW) == "pair_1"


async def test_a_code_is_claimed_once_when_two_approvals_race(storage: Storage) -> None:
    merchant, _ = await storage.create_merchant("Shop")
    store = PairingStore.of(storage)
    await store.start("pair_1", CODE, SECRET, now=NOW, expires_at=NOW + TTL)
    results = await asyncio.gather(
        *(store.claim(CODE, merchant.id, f"lane-{n}", now=NOW) for n in range(5)),
        return_exceptions=True,
    )
    assert results.count("pair_1") == 1
    assert {r.code for r in results if isinstance(r, PairingRefused)} == {"code_used"}
    assert len(await store.terminals(merchant.id)) == 1


async def test_expiry_unapproved_and_uncollected(storage: Storage) -> None:
    merchant, _ = await storage.create_merchant("Shop")
    store = PairingStore.of(storage)
    await store.start("pair_1", CODE, SECRET, now=NOW, expires_at=NOW + TTL)
    await _refused("pairing_expired", store.poll("pair_1", SECRET, now=NOW + TTL), storage)
    # Approved but never collected: the password goes when a later start purges.
    other = hashlib.sha256(b"other").hexdigest()
    await store.start("pair_2", other, SECRET, now=NOW, expires_at=NOW + TTL)
    await store.claim(other, merchant.id, "lane-1", now=NOW)
    await store.complete("pair_2", "the-password", collect_by=NOW + TTL)
    await _refused("pairing_expired", store.poll("pair_2", SECRET, now=NOW + TTL), storage)
    later = NOW + TTL + PURGE_AFTER_MS + 1
    third = hashlib.sha256(b"third").hexdigest()
    await store.start("pair_3", third, SECRET, now=later, expires_at=later + TTL)
    rows = await _rows(storage)
    assert [row[0] for row in rows["pairings"]] == ["pair_2", "pair_3"]  # pair_1 purged
    assert "the-password" not in repr(rows)
    # A code's hash is taken while its row is there: the caller draws another.
    assert not await store.start("pair_4", third, SECRET, now=later, expires_at=later + TTL)
    await _refused("not_found", store.poll("pair_9", SECRET, now=later), storage)
