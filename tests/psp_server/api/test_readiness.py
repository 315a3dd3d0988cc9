"""``GET /readyz`` against real databases and a relay that cannot reach its
broker: ready when all is well, 503 with the reason when the database is
down (PostgreSQL stopped and started again under the PSP), the schema is
behind, or the relay lags; ``/healthz`` stays 200 throughout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.api.readiness import judge
from psp_server.core.records import OutboxBacklog
from psp_server.storage.postgres import migrate
from psp_server.storage.schema_migrate import known_migrations
from tests.support.broker import free_port
from tests.support.polling import until
from tests.support.postgres import PgCluster, PgServer, create_database
from tests.support.psp import Psp, code_of, start_psp, stop_psp


def codes(body: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in body["reasons"]]


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    """A server of the test's own: it is stopped under the PSP."""
    with PgCluster() as cluster:
        yield cluster


@pytest.mark.timeout(120)
async def test_a_stopped_database_makes_the_psp_not_ready_until_it_is_back(
    own_cluster: PgCluster,
) -> None:
    dsn = own_cluster.dsn(create_database(PgServer(own_cluster.dsn("postgres"))))
    migrate(dsn)
    psp = await start_psp(dsn)
    try:
        merchant = await psp.merchant()
        status, body = await psp.call("GET", "/readyz")
        assert (status, body["status"]) == (200, "ready"), body
        own_cluster.halt()

        async def not_ready() -> dict[str, Any] | None:
            status, body = await psp.call("GET", "/readyz")
            return body if status == 503 else None

        body = await until(not_ready, what="/readyz to say 503", timeout=20)
        assert codes(body) == ["database_unavailable"]
        assert "127.0.0.1" not in str(body)  # the database's address is the log's to say
        assert "outbox" not in body
        status, health = await psp.call("GET", "/healthz")
        assert (status, health["status"]) == (200, "ok")
        status, refused = await psp.call(
            "POST",
            "/v1/checkouts",
            json={"order_id": "A-1", "amount": 100, "currency": "EUR"},
            headers=merchant.auth,
        )
        assert (status, refused["error"]["code"]) == (503, "storage_unavailable")

        own_cluster.resume()

        async def ready() -> bool:
            return (await psp.call("GET", "/readyz"))[0] == 200

        await until(ready, what="/readyz to say 200 again", timeout=20)
        await psp.checkout(merchant)
    finally:
        await stop_psp(psp)


async def test_a_relay_that_lags_makes_the_psp_not_ready(db: str) -> None:
    # A broker nobody runs: the relay never publishes, and events age.
    psp: Psp = await start_psp(db, mqtt_url=f"mqtt://127.0.0.1:{free_port()}", ready_relay_lag=5.0)
    try:
        merchant, wallet = await psp.merchant(), await psp.wallet()
        status, body = await psp.call("GET", "/readyz")
        assert (status, body["outbox"]["pending"]) == (200, 0), body
        checkout = await psp.checkout(merchant)
        assert (await psp.pay(wallet, code_of(checkout)))[0] == 201
        status, body = await psp.call("GET", "/readyz")
        assert (status, body["outbox"]["pending"]) == (200, 1), body  # young yet
        psp.clock.advance(5_001)
        status, body = await psp.call("GET", "/readyz")
        assert status == 503, body
        assert codes(body) == ["relay_lagging"]
        assert body["outbox"]["pending"] == 1
        assert 5.001 <= body["outbox"]["oldest_pending_age_seconds"] < 10
    finally:
        await stop_psp(psp)


async def test_without_a_broker_waiting_events_are_no_reason(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"), ready_relay_lag=1.0)
    try:
        merchant, wallet = await psp.merchant(), await psp.wallet()
        assert (await psp.pay(wallet, code_of(await psp.checkout(merchant))))[0] == 201
        psp.clock.advance(60_000)
        status, body = await psp.call("GET", "/readyz")
        assert (status, body["outbox"]["pending"]) == (200, 1), body
    finally:
        await stop_psp(psp)


def test_the_judge_names_every_reason_at_once() -> None:
    behind = set(known_migrations()) - {max(known_migrations())}
    backlog = OutboxBacklog(3, 1_000)
    reasons = judge(applied=behind, backlog=backlog, now=62_000, relay_lag=60.0)
    assert [reason.code for reason in reasons] == ["schema_outdated", "relay_lagging"]
    assert max(known_migrations()) in reasons[0].message
    assert "61.0 s old" in reasons[1].message
    assert judge(applied=set(known_migrations()), backlog=backlog, now=2_000, relay_lag=60.0) == []
    down = judge(applied=None, backlog=None, now=0, relay_lag=None, database_error="x")
    assert [reason.code for reason in down] == ["database_unavailable"]


def test_a_backlog_is_consistent() -> None:
    assert OutboxBacklog(0, None).oldest_age(5_000) == 0.0
    for pending, oldest in ((0, 1), (1, None), (-1, None)):
        with pytest.raises(ValueError, match="not a backlog"):
            OutboxBacklog(pending, oldest)
