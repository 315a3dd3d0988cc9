"""Hostile text sent to the real processes, the way an attacker on the
broker or the network would send it: lone surrogates (as JSON escapes and
as raw bytes that are not UTF-8), NUL, CR LF followed by a forged record,
ANSI escapes, bidi controls and a megabyte. Each process must go on
running and answering, change nothing it shows or stores, and keep its log
(its stderr, as an operator's journal gets it) UTF-8, bounded and one line
per record (tests/support/hostile.py says what that means)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from scan2pay_common.topics import display_topic, state_topic, terminal_events_topic
from tests.support.board import local_midnight, sign_in
from tests.support.bridge import BridgeProcess, bridge_env, closed_port
from tests.support.broker import Mosquitto
from tests.support.hostile import (
    ANSI,
    BIDI,
    FORGED,
    HEADER_VALUE,
    INVALID_UTF8,
    MEGABYTE,
    NUL,
    log_problems,
    quoting_payloads,
)
from tests.support.mqtt import Publisher
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant
from tests.support.terminal_process import (
    MERCHANT,
    TERMINAL,
    States,
    TerminalProcess,
    send,
    show_qr,
)

pytestmark = pytest.mark.broker

STATE = {"online": True, "screen": "idle", "checkout_id": None, "displayed_at": None}


@contextlib.contextmanager
def publisher(broker: Mosquitto) -> Iterator[Publisher]:
    client = Publisher(broker.port)
    try:
        yield client
    finally:
        client.close()


# The terminal.


@pytest.fixture
def states(broker: Mosquitto) -> Iterator[States]:
    watcher = States(broker)
    yield watcher
    watcher.subscriber.close()


def frames_of(folder: Path) -> tuple[int, bytes]:
    return len(list(folder.glob("frame-*.png"))), (folder / "latest.png").read_bytes()


def settled_frames(folder: Path) -> tuple[int, bytes]:
    """The frames once a second has passed with no new one (the first
    frames follow the connection)."""
    seen, since = frames_of(folder), time.monotonic()
    while time.monotonic() - since < 1.0:
        time.sleep(0.1)
        now = frames_of(folder)
        if now != seen:
            seen, since = now, time.monotonic()
    return seen


def test_the_terminal_process_ignores_hostile_payloads_and_logs_them_safely(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    terminal = TerminalProcess(broker, frames)
    display = quoting_payloads({"type": "idle"}, field="type")
    events = quoting_payloads({"checkout": 1})

    def ignored() -> int:
        text = terminal.log.read_text(errors="replace")
        return text.count("ignored a display payload") + text.count("ignored an event payload")

    try:
        states.until("idle")
        shown = settled_frames(frames)
        with publisher(broker) as client:
            for payload in display:
                client.publish(display_topic(MERCHANT, TERMINAL), payload, retain=False)
            for payload in events:
                client.publish(terminal_events_topic(MERCHANT, TERMINAL), payload, retain=False)
        wait_until(
            lambda: ignored() == len(display) + len(events), "warning for each payload", timeout=30
        )
        assert terminal.process.poll() is None
        assert states.subscriber.drain() == []  # the same screen, so no new state
        assert frames_of(frames) == shown
        send(broker, show_qr("co_after"))  # and it still answers
        assert states.until("qr").checkout_id == "co_after"
    finally:
        assert terminal.stop() == 0
    log = terminal.log.read_bytes()
    assert log_problems(log) == [], log[-3000:]
    assert "…(+" in log.decode()  # the megabyte was cut, not left out
    assert ignored() == len(display) + len(events)


# The PSP.


@dataclass
class Remote:
    """The PSP process as tests.support.board talks to it."""

    http: aiohttp.ClientSession
    url: str


def table_counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        # Table names from sqlite_master, not from outside.
        count = 'SELECT count(*) FROM "{}"'
        return {t: connection.execute(count.format(t)).fetchone()[0] for t in tables}


async def raw_http(url: str, request: bytes) -> bytes:
    """Sends ``request`` as it is, with the Host and Connection: close lines
    added after its first line, and reads the answer to its end. A request
    the server cuts short answers what arrived."""
    host, port = url.removeprefix("http://").split(":")
    line, _, rest = request.partition(b"\r\n")
    data = line + b"\r\nHost: x\r\nConnection: close\r\n" + rest
    reader, writer = await asyncio.open_connection(host, int(port))
    answer = b""
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:  # cut off while sending: what arrived, if anything
        with contextlib.suppress(ConnectionError):
            answer += await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return answer


def hostile_requests(key: str) -> list[bytes]:
    """Bodies, headers and paths; none of them a request the PSP can serve."""
    auth = f"Authorization: Bearer {key}\r\n".encode()
    bodies = quoting_payloads(
        {"order_id": "A-2", "amount": 100, "currency": "EUR"}, field="order_id"
    )
    valid = json.dumps({"order_id": "A-3", "amount": 100, "currency": "EUR"}).encode()
    evil = (FORGED + ANSI + BIDI).encode()
    requests = [
        b"POST /v1/checkouts HTTP/1.1\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        for body in bodies
    ]
    for header in (
        b"Idempotency-Key: \x1b[31m" + INVALID_UTF8 + "\u202e".encode(),
        b"Idempotency-Key: k" + FORGED.encode(),  # CR LF: the forged line ends the header
        b"Idempotency-Key: k" + NUL.encode(),
        b"User-Agent: " + evil.replace(b"\r\n", b"") + INVALID_UTF8,
    ):
        requests.append(
            b"POST /v1/checkouts HTTP/1.1\r\n"
            + auth
            + header
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(valid)
            + valid
        )
    requests += [
        b"GET /v1/checkouts/co_none HTTP/1.1\r\n"
        + auth
        + b"User-Agent: "
        + HEADER_VALUE
        + b"\r\n\r\n",
        b"GET /v1/checkouts/%0D%0A2026-01-01%2000:00:00,000%20INFO%20x%1B%5B2J%ED%A0%80 HTTP/1.1"
        b"\r\n" + auth + b"\r\n",
        b"GET /Q/\x1b[2J" + INVALID_UTF8 + b" HTTP/1.1\r\n\r\n",  # refused by the parser
        b"GET /Q/" + MEGABYTE.encode() + b" HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nUser-Agent: " + MEGABYTE.encode() + b"\r\n\r\n",
    ]
    return requests


async def all_refused(url: str, requests: list[bytes]) -> None:
    """Each request answered 4xx, or cut off if it is a megabyte long."""
    for request in requests:
        answer = await raw_http(url, request)
        cut_off = answer == b"" and len(request) > len(MEGABYTE)
        assert cut_off or answer[9:10] == b"4", (request[:100], answer[:300])


async def open_board(remote: Remote, key: str) -> aiohttp.ClientResponse:
    """The merchant's live board, open: the PSP watches its terminals."""
    signed = await sign_in(remote, key)
    response = await remote.http.get(
        f"{remote.url}/merchant/stream?since={local_midnight()}", headers=signed.headers
    )
    assert response.status == 200
    return response


async def test_the_psp_process_refuses_hostile_requests_and_states_and_logs_them_safely(
    broker: Mosquitto, tmp_path: Path
) -> None:
    db = tmp_path / "psp.db"
    merchant = create_merchant(db)
    key, merchant_id = merchant["api_key"], merchant["merchant_id"]
    psp = PspProcess(db, mqtt=broker.url)
    auth = {"Authorization": f"Bearer {key}"}
    states = quoting_payloads(STATE, field="displayed_at")
    topics = [f"scan2pay/v1/m/{merchant_id}/t/{BIDI}{'M' * 60_000}/state"]  # the rest, refused

    def warned() -> int:
        return psp.log().count("ignored a terminal state on ")

    try:
        async with aiohttp.ClientSession() as http:
            remote = Remote(http, psp.url)
            order = {"order_id": "A-1", "amount": 100, "currency": "EUR"}
            async with http.post(f"{psp.url}/v1/checkouts", json=order, headers=auth) as answer:
                assert answer.status == 201
                checkout_url = f"{psp.url}/v1/checkouts/{(await answer.json())['id']}"
            async with http.get(checkout_url, headers=auth) as answer:
                checkout = await answer.json()
            board = await open_board(remote, key)
            counts = table_counts(db)
            with publisher(broker) as client:
                for n, payload in enumerate(states):
                    client.publish(state_topic(merchant_id, f"till-{n}"), payload)
                for topic in topics:
                    client.publish(topic, json.dumps(STATE).encode())
            await all_refused(psp.url, hostile_requests(key))
            await asyncio.to_thread(
                wait_until, lambda: warned() == len(states) + len(topics), "warning for each state"
            )
            assert psp.process.poll() is None
            async with http.get(f"{psp.url}/healthz") as answer:
                assert answer.status == 200
            async with http.get(checkout_url, headers=auth) as answer:
                assert await answer.json() == checkout
            assert table_counts(db) == counts
            board.close()
    finally:
        assert psp.stop() == 0
    log = psp.log_path.read_bytes()
    assert log_problems(log) == [], log[-3000:]
    assert warned() == len(states) + len(topics)
    assert "…(+" in log.decode()  # the megabyte was cut, not left out
    # A request the HTTP parser refused gets its access line, not a traceback.
    assert "Unhandled exception" not in log.decode()


# The cashier bridge's local API.


async def test_the_bridge_process_logs_hostile_requests_safely(broker: Mosquitto) -> None:
    bridge = await BridgeProcess.start(
        "serve",
        *("--port", "0", "--psp-url", f"http://127.0.0.1:{closed_port()}", "--mqtt", broker.url),
        env=bridge_env(SCAN2PAY_MERCHANT_KEY="mk_x", SCAN2PAY_TERMINAL="lane-1"),
    )
    try:
        await bridge.until_line()
        url = bridge.lines[0].removeprefix("listening on ")
        evil = (ANSI + BIDI).encode() + INVALID_UTF8
        requests = [
            b"GET /checkouts/%0D%0Aforged%1B%5B31m%ED%A0%80 HTTP/1.1\r\n\r\n",
            b"GET /checkouts/x HTTP/1.1\r\nUser-Agent: " + HEADER_VALUE + b"U" * 6000 + b"\r\n\r\n",
            b"GET /checkouts/x HTTP/1.1\r\nReferer: " + HEADER_VALUE + b"\r\n\r\n",
            b"GET /checkouts/x HTTP/1.1\r\nUser-Agent: " + evil + b"\r\n\r\n",  # refused
            b"GET /checkouts/\x1b[2J"
            + INVALID_UTF8
            + b" HTTP/1.1\r\n\r\n",  # refused by the parser
            b"POST /checkouts HTTP/1.1\r\nContent-Length: 12\r\n\r\n" + b'{"\\ud867": 1',
        ]
        await all_refused(url, requests)
        answer = await raw_http(url, b"GET /checkouts/lc_none HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 404")  # still answering
    finally:
        bridge.process.send_signal(signal.SIGTERM)
        assert await bridge.finish() == 0, bridge.output()
    assert log_problems(bytes(bridge.stderr)) == [], bytes(bridge.stderr)[-3000:]
    assert bytes(bridge.stderr).count(b'"GET /checkouts/') == 4  # the access lines are there
