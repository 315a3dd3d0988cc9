"""``cashier-bridge serve``: the local HTTP API for POS software, against a
real PSP, broker and terminal daemon."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from cashier_bridge.local_api import LocalApi, start_local_api
from cashier_bridge.model import BridgeConfig
from scan2pay_common.mqtt_url import MqttTarget
from tests.support.bridge import (
    BridgeProcess,
    bridge_config,
    bridge_env,
    closed_port,
    code_of_url,
    retained_display,
    running_terminal,
)
from tests.support.broker import Mosquitto
from tests.support.polling import until
from tests.support.psp import Psp

ORDER = {"order_id": "A-1001", "amount_major": "12.34", "currency": "EUR"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, data=raw) as response:
        return response.status, await response.json()


async def read_stream(
    http: aiohttp.ClientSession, url: str, *, last_event_id: str | None = None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a server-sent event stream, until the server ends it."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if "event" in event:
                    yield event["event"], json.loads(event["data"])
                event = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value


async def until_status(http: aiohttp.ClientSession, url: str, status: str) -> dict[str, Any]:
    async def progress() -> dict[str, Any] | None:
        _, body = await call(http, "GET", url)
        found: dict[str, Any] = body
        return found if found["status"] == status else None

    reached: dict[str, Any] = await until(progress, what=f"checkout {status}", every=0.02)
    return reached


@pytest.fixture
async def api_for(psp_with_broker: Psp, broker: Mosquitto) -> AsyncIterator[Any]:
    started: list[LocalApi] = []

    async def start(config: BridgeConfig) -> LocalApi:
        api = await start_local_api(config, "127.0.0.1", 0)
        started.append(api)
        return api

    yield start
    for api in started:
        await api.stop()


async def test_post_then_follow_the_stream_to_paid(
    psp_with_broker: Psp, broker: Mosquitto, http: aiohttp.ClientSession, api_for: Any
) -> None:
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    api = await api_for(bridge_config(psp, merchant, broker.url))
    async with running_terminal(broker, merchant.id) as terminal:
        status, started = await call(http, "POST", f"{api.url}/checkouts", ORDER)
        assert status == 202, started
        assert started["status"] == "starting"
        assert (started["amount"], started["currency"], started["terminal_id"]) == (
            1234,
            "EUR",
            "lane-1",
        )
        url = api.url + started["links"]["self"]

        # The same request again is the same checkout; a different one is not.
        status, again = await call(http, "POST", f"{api.url}/checkouts", ORDER)
        assert (status, again["id"]) == (200, started["id"])
        status, conflict = await call(
            http, "POST", f"{api.url}/checkouts", {**ORDER, "amount_major": "1"}
        )
        assert (status, conflict["error"]["code"]) == (409, "order_conflict")
        status, busy = await call(
            http, "POST", f"{api.url}/checkouts", {**ORDER, "order_id": "B-1"}
        )
        assert (status, busy["error"]["code"]) == (409, "terminal_busy")

        seen: list[tuple[str, dict[str, Any]]] = []
        async for event, data in read_stream(http, api.url + started["links"]["events"]):
            seen.append((event, data))
            if event == "shown":
                status, _ = await psp.pay(wallet, code_of_url(seen[1][1]["data"]["qr_url"]))
                assert status == 201
        progress = await call(http, "GET", url)
        await terminal.until_screen("paid", progress[1]["checkout_id"])

    assert [event for event, _ in seen] == [
        "connected",
        "created",
        "sent",
        "shown",
        "event",
        "paid",
    ]
    assert all(data["step"] == event for event, data in seen)
    status, done = progress
    assert status == 200
    assert done["status"] == "paid"
    assert done["checkout_id"].startswith("co_")
    assert done["error"] is None
    assert [s["step"] for s in done["steps"]] == [event for event, _ in seen]
    # A stream opened after the end replays it all and ends; a reconnecting
    # EventSource goes on after the last event it had.
    events_url = api.url + started["links"]["events"]
    replay = [event async for event, _ in read_stream(http, events_url)]
    assert replay == [event for event, _ in seen]
    rest = [event async for event, _ in read_stream(http, events_url, last_event_id="3")]
    assert rest == ["event", "paid"]


async def test_cancel_while_on_screen_shows_cancelled(
    psp_with_broker: Psp, broker: Mosquitto, http: aiohttp.ClientSession, api_for: Any
) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    api = await api_for(bridge_config(psp, merchant, broker.url))
    async with running_terminal(broker, merchant.id) as terminal:
        _, started = await call(http, "POST", f"{api.url}/checkouts", ORDER)
        url = api.url + started["links"]["self"]
        on_screen = await until_status(http, url, "on_screen")
        status, cancelled = await call(http, "POST", api.url + started["links"]["cancel"])
        assert status == 200, cancelled
        assert cancelled["status"] == "cancelled"
        assert cancelled["steps"][-1]["step"] == "cancelled"
        await terminal.until_screen("cancelled", on_screen["checkout_id"])
        # Cancelling a cancelled checkout is fine; a paid one would be a 409.
        assert (await call(http, "POST", api.url + started["links"]["cancel"]))[0] == 200
    _, checkout = await psp.call(
        "GET", f"/v1/checkouts/{on_screen['checkout_id']}", headers=merchant.auth
    )
    assert checkout["status"] == "cancelled"


async def test_a_failure_is_reported_with_its_code(
    psp_with_broker: Psp, broker: Mosquitto, http: aiohttp.ClientSession, api_for: Any
) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    api = await api_for(bridge_config(psp, merchant, broker.url, screen_timeout=0.3))
    _, started = await call(http, "POST", f"{api.url}/checkouts", ORDER)  # no terminal runs
    events = [event async for event, _ in read_stream(http, api.url + started["links"]["events"])]
    assert events == ["connected", "created", "sent", "terminal_offline", "failed"]
    _, progress = await call(http, "GET", api.url + started["links"]["self"])
    assert progress["status"] == "failed"
    assert progress["error"]["code"] == "terminal_offline"
    assert progress["error"]["exit_code"] == 5
    # The same order again after a failure is tried again: the PSP finds
    # the checkout the first try made, and the flow tells how it ended.
    status, again = await call(http, "POST", f"{api.url}/checkouts", ORDER)
    assert status == 202
    assert again["id"] != started["id"]
    events = [event async for event, _ in read_stream(http, api.url + again["links"]["events"])]
    assert events == ["connected", "created", "cancelled"]


async def test_shutdown_cancels_running_checkouts_and_ends_their_streams(
    psp_with_broker: Psp, broker: Mosquitto, http: aiohttp.ClientSession
) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    api = await start_local_api(bridge_config(psp, merchant, broker.url), "127.0.0.1", 0)
    async with running_terminal(broker, merchant.id) as terminal:
        _, started = await call(http, "POST", f"{api.url}/checkouts", ORDER)
        on_screen = await until_status(http, api.url + started["links"]["self"], "on_screen")

        async def events() -> list[str]:
            return [e async for e, _ in read_stream(http, api.url + started["links"]["events"])]

        stream = asyncio.create_task(events())
        await asyncio.sleep(0.1)
        async with asyncio.timeout(10):
            await api.stop()
            seen = await stream
        await terminal.until_screen("idle")
    assert seen[-1] == "interrupted"
    _, checkout = await psp.call(
        "GET", f"/v1/checkouts/{on_screen['checkout_id']}", headers=merchant.auth
    )
    assert checkout["status"] == "cancelled"
    assert await asyncio.to_thread(retained_display, broker, merchant.id) == "idle"


async def test_requests_that_break_the_rules_get_json_errors(http: aiohttp.ClientSession) -> None:
    nowhere = f"127.0.0.1:{closed_port()}"
    config = BridgeConfig(
        psp_url=f"http://{nowhere}",
        merchant_key="mk_x",
        mqtt=MqttTarget.parse(f"mqtt://{nowhere}"),
        terminal_id="lane-1",
    )
    api = await start_local_api(config, "127.0.0.1", 0)
    try:
        post = f"{api.url}/checkouts"
        cases: list[tuple[Any, bytes | None, int, str]] = [
            (None, b"{not json", 400, "invalid_json"),
            ({**ORDER, "tip": 1}, None, 422, "unknown_field"),
            ({"order_id": "A-1", "amount": 100}, None, 422, "missing_field"),
            ({**ORDER, "amount_major": "12.345"}, None, 422, "invalid_amount"),
            ({**ORDER, "amount": 1234}, None, 422, "invalid_amount"),
            ({**ORDER, "amount_major": None, "amount": "1234"}, None, 422, "invalid_amount"),
            ({**ORDER, "currency": "XYZ"}, None, 422, "invalid_currency"),
            ({**ORDER, "terminal_id": "lane 1"}, None, 422, "invalid_terminal_id"),
            ({**ORDER, "expires_in": 0}, None, 422, "invalid_expires_in"),
        ]
        for body, raw, expected_status, expected_code in cases:
            status, answer = await call(http, "POST", post, body, raw=raw)
            assert (status, answer["error"]["code"]) == (expected_status, expected_code), body
            assert answer["error"]["message"]
        for method, path in (
            ("GET", "/checkouts/lc_nope"),
            ("GET", "/checkouts/lc_nope/events"),
            ("POST", "/checkouts/lc_nope/cancel"),
            ("GET", "/elsewhere"),
        ):
            status, answer = await call(http, method, api.url + path)
            assert (status, answer["error"]["code"]) == (404, "not_found")
    finally:
        await api.stop()


async def test_serve_as_a_process_listens_on_loopback_and_stops_on_sigterm(
    psp: Psp, broker: Mosquitto, http: aiohttp.ClientSession
) -> None:
    merchant = await psp.merchant()
    bridge = await BridgeProcess.start(
        "serve",
        "--port",
        "0",
        "--psp-url",
        psp.url,
        "--mqtt",
        broker.url,
        env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
    )
    await bridge.until_line()
    (line,) = bridge.lines
    assert line.startswith("listening on http://127.0.0.1:")
    url = line.removeprefix("listening on ")
    status, answer = await call(http, "POST", f"{url}/checkouts", ORDER)
    assert (status, answer["error"]["code"]) == (422, "invalid_terminal_id")  # no default set
    bridge.process.send_signal(signal.SIGTERM)
    assert await bridge.finish() == 0, bridge.output()
    assert merchant.key not in bridge.output()
