"""One BridgeSession for many checkouts, against the real PSP and mosquitto:
the merchant and the PSP's keys are fetched once, one MQTT connection carries
every checkout, the keys are fetched again once the PSP rotates its key, and
closing the session leaves no socket or task behind."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from cashier_bridge.errors import EXIT_BAD_INPUT, KeyRejected
from cashier_bridge.flow import checkout_in
from cashier_bridge.local_api import start_local_api
from cashier_bridge.model import BridgeConfig, CheckoutOrder, CheckoutResult
from cashier_bridge.session import BridgeSession
from scan2pay_common.timefmt import now_ms
from tests.cashier_bridge.test_bridge_local_api import call, until_status
from tests.support.bridge import (
    TERMINAL,
    Steps,
    bridge_config,
    code_of_url,
    running_terminal,
)
from tests.support.broker import Mosquitto
from tests.support.polling import wait_until
from tests.support.proxy import CuttableProxy
from tests.support.psp import Merchant, Psp, Wallet, start_psp, stop_psp

CHECKOUTS = 3


@pytest.fixture
def psp_requests(caplog: pytest.LogCaptureFixture) -> Iterator[list[tuple[str, str]]]:
    """(method, route) of each request the PSP answers, from its access log
    (psp_server/api/guards/access_log.py, on the runner's logger)."""
    access = logging.getLogger("aiohttp.access")
    caplog.set_level(logging.INFO, logger=access.name)
    seen: list[tuple[str, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = json.loads(record.getMessage())
            seen.append((line["method"], line["route"]))

    handler = Collect()
    access.addHandler(handler)
    yield seen
    access.removeHandler(handler)


def cashier_connections(broker: Mosquitto) -> list[str]:
    """The client ids of the bridge's MQTT connections, from the broker's log."""
    return re.findall(
        r"New client connected from \S+ as (scan2pay-cashier-\w+)", broker.log.read_text()
    )


def disconnected(broker: Mosquitto, client_id: str) -> bool:
    return f"Client {client_id} disconnected" in broker.log.read_text()


async def pay_when_shown(psp: Psp, wallet: Wallet, steps: Steps) -> None:
    await steps.wait_for("shown")
    status, answer = await psp.pay(wallet, code_of_url(steps.first("created").data["qr_url"]))
    assert status == 201, answer


def order_of(order_id: str) -> CheckoutOrder:
    return CheckoutOrder(order_id=order_id, amount=100, currency="EUR", terminal_id=TERMINAL)


async def paid_in(
    session: BridgeSession, psp: Psp, wallet: Wallet, order_id: str
) -> tuple[CheckoutResult, Steps]:
    steps = Steps()
    payer = asyncio.create_task(pay_when_shown(psp, wallet, steps))
    result = await checkout_in(session, order_of(order_id), steps.add)
    await payer
    assert result.outcome == "paid"
    return result, steps


def connections_to(*ports: int) -> int:
    """Established TCP connections to these loopback ports (/proc/net/tcp):
    the PSP's and the broker's are the test's own, so whoever holds one is
    this process or the terminal daemon it runs."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)  # the header
            for row in rows:
                remote, state = row.split()[2:4]
                found += state == "01" and int(remote.rsplit(":", 1)[1], 16) in ports
    return found


def mqtt_and_bridge_tasks() -> set[asyncio.Task[Any]]:
    """Running tasks of the bridge's code, of the loop that keeps its MQTT
    connection (scan2pay_common/reconnect.py) or of an MQTT client's."""
    found = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and re.search(
            r"cashier_bridge|reconnect|aiomqtt|paho", code.co_filename
        ):
            found.add(task)
    return found


async def test_a_series_in_one_process_fetches_once_and_connects_once(
    psp_with_broker: Psp, broker: Mosquitto, psp_requests: list[tuple[str, str]]
) -> None:
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    async with running_terminal(broker, merchant.id):
        # The test's own client to the PSP (the wallet's payments) keeps a
        # connection: made before the count, it is not the session's.
        await psp.call("GET", "/")
        ports = (int(psp.url.rsplit(":", 1)[1]), broker.port)
        connections_before, tasks_before = connections_to(*ports), mqtt_and_bridge_tasks()
        async with BridgeSession(bridge_config(psp, merchant, broker.url)) as session:
            for n in range(CHECKOUTS):
                _, steps = await paid_in(session, psp, wallet, f"S-{n}")
                assert steps.names[0] == "connected"
                assert steps.first("paid").data["via"] == "event"  # verified with the keys held
        assert psp_requests.count(("GET", "/v1/merchant")) == 1
        assert psp_requests.count(("GET", "/v1/keys")) == 1
        assert psp_requests.count(("POST", "/v1/checkouts")) == CHECKOUTS
        (client_id,) = cashier_connections(broker)
        # Closed: the broker saw it go, and nothing of it is left here (the
        # loop runs meanwhile, for the PSP to close its side).
        await asyncio.to_thread(
            wait_until,
            lambda: (
                disconnected(broker, client_id) and connections_to(*ports) == connections_before
            ),
            "the session's connections closed",
            5,
        )
        assert mqtt_and_bridge_tasks() == tasks_before  # the terminal's own are still there


async def test_the_local_api_runs_every_checkout_on_one_session(
    psp_with_broker: Psp, broker: Mosquitto, psp_requests: list[tuple[str, str]]
) -> None:
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    tasks_before = mqtt_and_bridge_tasks()  # the PSP's own MQTT clients'
    api = await start_local_api(bridge_config(psp, merchant, broker.url), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http, running_terminal(broker, merchant.id):
            for n in range(CHECKOUTS):
                order = {"order_id": f"L-{n}", "amount": 100, "currency": "EUR"}
                status, started = await call(http, "POST", f"{api.url}/checkouts", order)
                assert status == 202, started
                url = api.url + started["links"]["self"]
                shown = await until_status(http, url, "on_screen")
                status, _ = await psp.pay(wallet, code_of_url(shown["qr_url"]))
                assert status == 201
                await until_status(http, url, "paid")
    finally:
        await api.stop()
    assert psp_requests.count(("GET", "/v1/merchant")) == 1
    assert psp_requests.count(("GET", "/v1/keys")) == 1
    (client_id,) = cashier_connections(broker)
    await asyncio.to_thread(wait_until, lambda: disconnected(broker, client_id), client_id, 5)
    assert mqtt_and_bridge_tasks() == tasks_before


async def test_a_rotated_key_is_fetched_once_and_its_events_verify(
    db: str, broker: Mosquitto, psp_requests: list[tuple[str, str]]
) -> None:
    """The PSP restarts with a new active key (``psp-server keys rotate``,
    then a restart): the first event it signs with it does not verify with
    the keys the session holds, so the session fetches them once more, and
    the event counts."""
    first = await start_psp(db, mqtt_url=broker.url, sweep_interval=0.05)
    psp = first
    try:
        merchant: Merchant = await psp.merchant()
        wallet = await psp.wallet()
        async with (
            CuttableProxy(psp.url) as proxy,
            running_terminal(broker, merchant.id),
        ):
            config: BridgeConfig = bridge_config(psp, merchant, broker.url, psp_url=proxy.url)
            async with BridgeSession(config) as session:
                await paid_in(session, psp, wallet, "R-1")
                await psp.storage.rotate_signing_key(now=now_ms())
                await stop_psp(first)
                psp = await start_psp(db, mqtt_url=broker.url, sweep_interval=0.05)
                proxy.target = ("127.0.0.1", int(psp.url.rsplit(":", 1)[1]))
                proxy.cut()  # the kept-alive connections to the old PSP go
                for order_id in ("R-2", "R-3"):
                    _, steps = await paid_in(session, psp, wallet, order_id)
                    assert steps.first("paid").data["via"] == "event"
                assert session.keys is not None
                assert session.keys.refetches == 1
        assert psp_requests.count(("GET", "/v1/keys")) == 2
        assert psp_requests.count(("GET", "/v1/merchant")) == 1
        assert len(cashier_connections(broker)) == 1
    finally:
        await stop_psp(psp)


async def test_the_connection_comes_back_subscribed_after_the_broker_restarts(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    """The broker restarts between two checkouts of one session: its link
    reconnects by itself and subscribes again, so it hears the terminal come
    back online, and the next checkout sees it show the QR (states it only
    has through its subscription)."""
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    async with (
        running_terminal(broker, merchant.id),
        BridgeSession(bridge_config(psp, merchant, broker.url)) as session,
    ):
        await paid_in(session, psp, wallet, "B-1")
        link = session.broker
        assert link is not None
        await asyncio.to_thread(broker.restart)
        restarted = time.monotonic()

        def back_online() -> bool | None:
            found = link.states.get(TERMINAL)
            if found is None or found[1] < restarted or not found[0].online:
                return None
            return True

        assert await link.until(back_online, time.monotonic() + 10)
        _, steps = await paid_in(session, psp, wallet, "B-2")
        assert "shown" in steps.names
        assert session.broker is link  # the same link, not a new one
    assert len(cashier_connections(broker)) == 2  # one per broker run


async def test_a_rejected_key_forgets_the_merchant_and_the_new_key_works(
    psp_with_broker: Psp, broker: Mosquitto, psp_requests: list[tuple[str, str]]
) -> None:
    """The merchant's key is replaced (``psp-server merchant rotate-key``)
    while a session holds the merchant it fetched with the old one: the next
    checkout is refused as bad input (exit code 2, docs/cashier.md) before
    anything exists, and the one after asks the PSP who the key is again
    rather than trusting the merchant it had. With the new key in the
    config, checkouts go on."""
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    async with running_terminal(broker, merchant.id):
        async with BridgeSession(bridge_config(psp, merchant, broker.url)) as session:
            await paid_in(session, psp, wallet, "K-1")
            new_key = await psp.storage.replace_secret("merchant", merchant.id, revoke=False)
            assert new_key is not None
            since = len(psp_requests)
            for order_id in ("K-2", "K-3"):
                with pytest.raises(KeyRejected, match="merchant key rejected by the PSP") as err:
                    await checkout_in(session, order_of(order_id), lambda step: None)
                assert err.value.exit_code == EXIT_BAD_INPUT
                assert session.merchant is None
            # K-2 went straight to the create with the merchant it held; K-3
            # asked who the key is, and was told no.
            assert psp_requests[since:] == [("POST", "/v1/checkouts"), ("GET", "/v1/merchant")]
        renewed = replace(merchant, key=new_key)
        async with BridgeSession(bridge_config(psp, renewed, broker.url)) as session:
            _, steps = await paid_in(session, psp, wallet, "K-4")
            assert steps.first("connected").data["merchant_id"] == merchant.id
    assert psp_requests.count(("GET", "/v1/merchant")) == 3
    assert psp_requests.count(("POST", "/v1/checkouts")) == 3  # K-1, the refused K-2, K-4
