"""Each place that logs text from outside escapes it itself: the records
are checked as pytest captures them, before any formatter of ours runs
(pytest-xdist's worker once died sending such a record, with a lone
surrogate in it, back to the controller). Every hostile input below gets
exactly one record, and its message must be one safe, bounded line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cashier_bridge import local_api
from cashier_bridge.flow import _Checkout
from cashier_bridge.model import BridgeConfig, CheckoutOrder
from cashier_bridge.psp_client import PspClient
from cashier_bridge.session import BridgeSession
from cashier_bridge.terminal_link import BrokerLink
from hardware.base import DummyDisplay
from psp_server.api import app as psp_app
from psp_server.mqtt.presence import Presence
from psp_server.webhooks.dispatcher import _log_outcome
from psp_server.webhooks.store import DueDelivery, Outcome
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import state_topic
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from terminal.psp_lookup import _lookup
from terminal.screens import IdleScreen
from tests.support.hostile import ANSI, FORGED, HEADER_VALUE, MEGABYTE, TEXTS, message_problem
from tests.support.hostile import quoting_payloads as quoting

MERCHANT, TERMINAL = "mer_0123456789abcdef0123", "lane-1"
NOWHERE = MqttTarget.parse("mqtt://127.0.0.1:9")
HOSTILE = [*TEXTS.values(), MEGABYTE]
STATE = {"online": True, "screen": "idle", "checkout_id": None, "displayed_at": None}
# A header an HTTP peer sends back, long and hostile (aiohttp's error
# messages quote it, newlines around it).
EVIL_HEADER = b"X-Evil: a\x00\x1b[31m\xff" + b"A" * 6000


def records_of(caplog: pytest.LogCaptureFixture, before: int) -> list[logging.LogRecord]:
    """Ours only: aiohttp's own records (a request it refused) are the
    formatter's business (tests/scan2pay_common/test_logformat.py)."""
    ours = ("terminal", "psp_server", "cashier_bridge")
    return [r for r in caplog.records[before:] if r.name.split(".")[0] in ours]


def assert_one_safe_record(caplog: pytest.LogCaptureFixture, before: int, what: object) -> None:
    new = records_of(caplog, before)
    assert len(new) == 1, (what, [r.getMessage()[:200] for r in new])
    message = new[0].getMessage()
    assert message_problem(message) is None, (message_problem(message), message[:300])


# The terminal.


@pytest.fixture
def daemon() -> TerminalDaemon:
    config = TerminalConfig(mqtt=NOWHERE, merchant_id=MERCHANT, terminal_id=TERMINAL)
    return TerminalDaemon(config, DummyDisplay(geometry=None))


def test_the_terminal_escapes_display_payloads(
    daemon: TerminalDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="terminal")
    for payload in quoting({"type": "idle"}, field="type"):
        before = len(caplog.records)
        daemon.handle_message(daemon.display_topic, payload)
        assert_one_safe_record(caplog, before, payload[:80])
    assert daemon.controller.view.screen == IdleScreen(daemon.config.name)


def test_the_terminal_escapes_event_payloads(
    daemon: TerminalDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="terminal")
    for topic in (daemon.terminal_events_topic, daemon.events_topic):
        for payload in quoting({"checkout": 1}):
            before = len(caplog.records)
            daemon.handle_message(topic, payload)
            assert_one_safe_record(caplog, before, payload[:80])


@pytest.fixture
async def garbage_http() -> AsyncIterator[str]:
    """An HTTP server whose every answer has a header no parser takes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\n" + EVIL_HEADER + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def hostile_psp() -> AsyncIterator[str]:
    """A 'PSP' that answers a QR lookup with a hostile expiry, refuses to
    cancel co_paid as already paid, and refuses anything else with a
    hostile message."""
    text = "".join(HOSTILE)
    lie = {"checkout_id": "co_1", "amount": 1, "currency": "EUR", "status": "pending"}

    async def answer(request: web.Request) -> web.Response:
        if request.path == "/Q/LIE":
            return web.json_response({**lie, "expires_at": text})
        code = "already_paid" if request.path.endswith("/co_paid/cancel") else "nope"
        return web.json_response({"error": {"code": code, "message": text}}, status=409)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_the_terminal_escapes_what_a_bare_url_lookup_meets(
    garbage_http: str, hostile_psp: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="terminal")
    for url in (
        f"{hostile_psp}/Q/LIE",  # its expiry is not a time
        f"{garbage_http}/Q/ABC",  # the answer breaks HTTP
        f"http://127.0.0.1:9/Q/{FORGED}{ANSI}",  # urllib refuses the URL
    ):
        before = len(caplog.records)
        assert await asyncio.to_thread(_lookup, url) is None
        assert_one_safe_record(caplog, before, url)


# The PSP.


async def test_the_psp_escapes_malformed_terminal_states(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="psp_server")
    presence = Presence(NOWHERE)
    async with presence.watch(MERCHANT):
        for n, payload in enumerate(quoting(STATE, field="displayed_at")):
            before = len(caplog.records)
            presence._hear(state_topic(MERCHANT, f"till-{n}"), payload)
            assert_one_safe_record(caplog, before, payload[:80])
        for text in HOSTILE:
            before = len(caplog.records)
            presence._hear(f"scan2pay/v1/m/{MERCHANT}/t/{text[:60000]}/state", b"{}")
            assert_one_safe_record(caplog, before, text[:80])


async def test_the_psp_escapes_a_webhook_endpoints_answer(
    garbage_http: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="psp_server")
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(garbage_http, data=b"{}"):
                pass
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"  # as the dispatcher words it
    assert "\n" in error or len(error) > 1000, error  # something to escape
    due = DueDelivery("wh_1", 1, "ev_1", garbage_http, "secret", b"{}", 0)
    before = len(caplog.records)
    _log_outcome(due, Outcome(0, 1, None, "connection_failed", error), "retrying")
    assert_one_safe_record(caplog, before, error[:80])


async def test_the_psp_escapes_the_path_of_a_request_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _unhandled_errors_are_escaped(psp_app.json_errors, caplog, "psp_server")


async def _unhandled_errors_are_escaped(
    middleware: Callable[..., Awaitable[web.StreamResponse]],
    caplog: pytest.LogCaptureFixture,
    logger: str,
) -> None:
    caplog.set_level(logging.ERROR, logger=logger)

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug")

    for path in (
        "/v1/checkouts/%0D%0A2026-01-01%2000:00:00,000%20INFO%20forged%1B%5B31m",
        "/v1/%ED%A0%80%FF%C2%85%E2%80%AE",  # a surrogate and a byte that are not UTF-8, C1, bidi
        "/v1/" + "%1B" * 50_000,
    ):
        before = len(caplog.records)
        response = await middleware(make_mocked_request("GET", path), broken)
        assert response.status == 500
        assert_one_safe_record(caplog, before, path[:80])


# The cashier bridge.


def test_the_bridge_escapes_state_and_event_payloads(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cashier_bridge")
    link = BrokerLink(NOWHERE, MERCHANT, timeout=1.0)
    for topic, payloads in (
        (link.state_topic_of(TERMINAL), quoting(STATE, field="displayed_at")),
        (link.events_topic, quoting({"checkout": 1})),
    ):
        for payload in payloads:
            before = len(caplog.records)
            link._handle(topic, payload)
            assert_one_safe_record(caplog, before, payload[:80])


def _checkout(psp_url: str) -> _Checkout:
    config = BridgeConfig(psp_url=psp_url, merchant_key="k", mqtt=NOWHERE, terminal_id=TERMINAL)
    order = CheckoutOrder("A-1", 100, "EUR", TERMINAL)
    return _Checkout(BridgeSession(config), order, lambda step: None)


async def test_the_bridge_escapes_what_the_psp_answers(
    hostile_psp: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cashier_bridge")
    checkout = _checkout(hostile_psp)
    async with PspClient(hostile_psp, "k", attempts=1) as psp:
        for checkout_id in ("co_1", "co_paid"):  # the cancel refused; the read after it
            before = len(caplog.records)
            assert await checkout._cancel_at_psp(psp, checkout_id) is None
            assert_one_safe_record(caplog, before, checkout_id)


async def test_the_bridge_escapes_a_broken_answer_and_its_steps(
    garbage_http: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cashier_bridge")
    checkout = _checkout(garbage_http)
    async with PspClient(garbage_http, "k", attempts=2) as psp:
        psp_records = len(caplog.records)
        assert await checkout._cancel_at_psp(psp, "co_1") is None
    new = records_of(caplog, psp_records)
    assert [r.levelname for r in new] == ["INFO", "WARNING"]  # the retry, the cancel
    for record in new:
        assert message_problem(record.getMessage()) is None, record.getMessage()[:300]
    for text in HOSTILE:
        before = len(caplog.records)
        checkout.emit("retry", f"no answer from the PSP ({text})")
        assert_one_safe_record(caplog, before, text[:80])


async def test_the_bridge_escapes_the_path_of_a_request_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _unhandled_errors_are_escaped(local_api.json_errors, caplog, "cashier_bridge")


async def test_the_bridges_access_log_escapes_what_the_client_chose(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cashier_bridge")
    config = BridgeConfig(psp_url="http://127.0.0.1:9", merchant_key="k", mqtt=NOWHERE)
    api = await local_api.start_local_api(config, port=0)
    host, port = api.url.removeprefix("http://").split(":")
    requests: list[Any] = [
        b"GET /checkouts/%0D%0Aforged%1B%5B31m HTTP/1.1\r\n",
        b"GET /checkouts/" + "\u202e€".encode() + b"M" * 6000 + b" HTTP/1.1\r\n",  # a 400
        b"GET / HTTP/1.1\r\nUser-Agent: " + HEADER_VALUE + b"U" * 6000 + b"\r\n",
        b"GET / HTTP/1.1\r\nReferer: " + HEADER_VALUE + b"\r\n",
    ]
    try:
        for request in requests:
            before = len(caplog.records)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request + b"Host: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            assert (await reader.read())[:12] in (b"HTTP/1.1 404", b"HTTP/1.0 400")
            writer.close()
            await asyncio.sleep(0.05)  # the access line follows the answer
            assert_one_safe_record(caplog, before, request[:80])
    finally:
        await api.stop()
