"""A wallet token is checked before the write: a refused one never joins
the SQLite commit group, whose jobs would all be rolled back and run again
if one of them raised (psp_server/storage/sqlite_worker.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.core.records import Reply
from psp_server.storage.sql_storage import SqlStorage
from psp_server.storage.sqlite_worker import SqliteWorker
from tests.support.psp import Psp, Wallet, code_of, start_psp, stop_psp

PAYERS = 6


@pytest.fixture
async def sqlite_psp(tmp_path: Path) -> AsyncIterator[Psp]:
    psp = await start_psp(str(tmp_path / "psp.db"))
    try:
        yield psp
    finally:
        await stop_psp(psp)


class Counted:
    """The payments handed to the writer and its group replays, counted as
    they happen."""

    def __init__(
        self, storage: SqlStorage, worker: SqliteWorker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.payments = 0
        self.replays = 0
        pay_reply, isolated = storage.pay_reply, worker._run_isolated

        async def counted_pay_reply(*args: Any, **kwargs: Any) -> Reply:
            self.payments += 1
            return await pay_reply(*args, **kwargs)

        def counted_isolated(group: list[Any]) -> None:
            self.replays += 1
            isolated(group)

        monkeypatch.setattr(storage, "pay_reply", counted_pay_reply)
        monkeypatch.setattr(worker, "_run_isolated", counted_isolated)


async def test_a_refused_token_never_enters_the_commit_group(
    sqlite_psp: Psp, monkeypatch: pytest.MonkeyPatch
) -> None:
    psp = sqlite_psp
    shop = await psp.merchant()
    payers = [await psp.wallet() for _ in range(PAYERS)]
    codes = [code_of(await psp.checkout(shop, order_id=f"A-{n}")) for n in range(PAYERS)]
    storage = psp.storage
    assert isinstance(storage, SqlStorage)
    assert isinstance(storage.worker, SqliteWorker)
    counted = Counted(storage, storage.worker, monkeypatch)
    stranger = Wallet("wal_stranger", "not-a-token-of-this-psp")

    answers = await asyncio.gather(
        *(psp.pay(payer, code) for payer, code in zip(payers, codes, strict=True)),
        psp.pay(stranger, codes[0]),
    )

    assert [status for status, _ in answers[:PAYERS]] == [201] * PAYERS
    assert answers[PAYERS] == (
        401,
        {"error": {"code": "unauthorized", "message": "unknown or revoked wallet token"}},
    )
    assert counted.payments == PAYERS  # the stranger's never reached the writer
    assert counted.replays == 0  # so no good payment was run twice


@pytest.mark.parametrize(
    ("token", "expected"),
    [("nobody", (401, "unauthorized")), (None, (400, "invalid_idempotency_key"))],
)
async def test_who_is_asking_is_answered_before_what_else_is_wrong(
    sqlite_psp: Psp, token: str | None, expected: tuple[int, str]
) -> None:
    if token is None:
        token = (await sqlite_psp.wallet()).token
    status, body = await sqlite_psp.call(
        "POST",
        "/v1/payments",
        data=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k" * 1000},
    )
    assert (status, body["error"]["code"]) == expected
