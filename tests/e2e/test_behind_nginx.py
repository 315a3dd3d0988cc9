"""The PSP behind a real nginx running the shipped deploy/psp/nginx.conf,
over TLS from a test CA: limits keyed on the real client (two clients,
127.0.0.2 and 127.0.0.3, each its own), a header forged by a client that
is not the proxy ignored, the board and its live stream through the
proxy, cookies made Secure by the proxy's https, and one request id from
nginx's log through the PSP's JSON log to the answer."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.board import EventStream, cookies_of, local_midnight, sign_in
from tests.support.nginx import Nginx, Tls, make_ca
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant

UNKNOWN_CODE = "A" * 32
ALICE, BOB = "127.0.0.2", "127.0.0.3"  # two clients, on two loopback addresses


@dataclass
class Stack:
    psp: PspProcess
    nginx: Nginx
    tls: Tls
    db: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    tls = make_ca(tmp_path / "tls")
    db = tmp_path / "psp.db"
    psp = PspProcess(
        db,
        extra=(
            *("--trusted-proxies", "127.0.0.1/32", "--log-format", "json"),
            *("--rate-qr-per-ip", "2/1h"),
        ),
    )
    nginx = Nginx(tmp_path / "nginx", int(psp.url.rsplit(":", 1)[1]), tls)
    try:
        nginx.start()
        yield Stack(psp, nginx, tls, db)
    finally:
        nginx.stop()
        psp.stop()


class Client:
    """A client on one loopback address, trusting the test's CA: what
    tests/support/board.py's helpers take (``http`` and ``url``)."""

    def __init__(self, source: str, url: str, tls: Tls) -> None:
        context: ssl.SSLContext | bool = tls.client_context()
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=context)
        self.http = aiohttp.ClientSession(connector=connector)
        self.url = url

    async def get(self, path: str, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        async with self.http.get(self.url + path, headers=headers, allow_redirects=False) as got:
            await got.read()
            return got

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[dict[str, Client]]:
    made = {
        "alice": Client(ALICE, stack.nginx.url, stack.tls),
        "bob": Client(BOB, stack.nginx.url, stack.tls),
        "alice direct": Client(ALICE, stack.psp.url, stack.tls),
    }
    yield made
    for client in made.values():
        await client.close()


def json_log(psp: PspProcess) -> list[dict[str, Any]]:
    """Every line of the PSP's log, each a JSON object (or the test fails)."""
    return [json.loads(line) for line in psp.log().splitlines()]


def access_lines(psp: PspProcess, count: int) -> list[dict[str, Any]]:
    """The access log's lines, once there are ``count`` of them (the log is
    written a loop iteration after the answer)."""

    def found() -> list[dict[str, Any]] | None:
        lines = [line for line in json_log(psp) if line["logger"] == "aiohttp.access"]
        return lines if len(lines) >= count else None

    lines: list[dict[str, Any]] = wait_until(found, f"{count} access log lines")
    return lines


async def test_limits_are_keyed_on_the_real_client_behind_nginx(
    stack: Stack, clients: dict[str, Client]
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    path = f"/Q/{UNKNOWN_CODE}"
    assert [(await alice.get(path)).status for _ in range(2)] == [404, 404]
    assert (await alice.get(path)).status == 429
    # Bob has a bucket of his own, though both come through the one proxy.
    assert (await bob.get(path)).status == 404
    # Alice cannot take another bucket by naming another address herself:
    # nginx appends hers, and the PSP reads from the right.
    assert (await alice.get(path, {"X-Forwarded-For": "198.51.100.7"})).status == 429
    access = access_lines(stack.psp, 5)
    assert {(line["remote"], line["status"]) for line in access} == {
        (ALICE, 404),
        (ALICE, 429),
        (BOB, 404),
    }
    # What the limiter logged while refusing carries the refused request's id.
    refused = {line["request_id"] for line in access if line["status"] == 429}
    limited = [line for line in json_log(stack.psp) if line["message"].startswith("rate limited")]
    assert {line["request_id"] for line in limited} == refused
    assert all(ALICE in line["message"] for line in limited)


async def test_a_forged_header_sent_straight_to_the_psp_is_ignored(
    stack: Stack, clients: dict[str, Client]
) -> None:
    direct = clients["alice direct"]
    path = f"/Q/{UNKNOWN_CODE}"
    forged = [
        {"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=198.51.100.{n}"} for n in range(3)
    ]
    assert [(await direct.get(path, headers)).status for headers in forged] == [404, 404, 429]
    # Nor does it make the PSP take https for granted.
    response = await direct.get("/merchant", {"X-Forwarded-Proto": "https"})
    assert list(cookies_of(response)) == ["s2p-signin"]
    assert {line["remote"] for line in access_lines(stack.psp, 4)} == {ALICE}


async def test_the_board_and_its_live_stream_work_through_nginx(
    stack: Stack, clients: dict[str, Client]
) -> None:
    merchant = create_merchant(stack.db)
    alice = clients["alice"]
    # Over https at nginx: the PSP sets __Host- cookies, Secure.
    signed = await sign_in(alice, merchant["api_key"])
    assert signed.cookie_name == "__Host-s2p-merchant"
    stream_url = f"{alice.url}/merchant/stream?since={local_midnight()}"
    async with alice.http.get(stream_url, headers=signed.headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        # A stream sends its headers itself; they name the request too.
        assert len(response.headers["X-Request-Id"]) == 32
        events = EventStream(response)
        await events.next_of("snapshot")
        # A checkout made through the proxy reaches the open board at once:
        # nginx holds nothing back.
        async with alice.http.post(
            alice.url + "/v1/checkouts",
            json={"order_id": "NGINX-1", "amount": 1250, "currency": "EUR"},
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        ) as created:
            assert created.status == 201
            checkout = await created.json()
        rows = await events.next_of("rows")
        assert checkout["id"] in json.dumps(rows)
    # The public URL was derived from nginx's scheme and host, and works.
    assert checkout["qr_url"].startswith(f"HTTPS://127.0.0.1:{stack.nginx.https_port}/Q/")
    code = checkout["qr_url"].rsplit("/", 1)[1]
    assert (await clients["bob"].get(f"/Q/{code}", {"Accept": "application/json"})).status == 200


async def test_one_request_id_from_nginx_to_the_psp_log_and_back(
    stack: Stack, clients: dict[str, Client]
) -> None:
    # nginx makes the id; one the client sends is not taken.
    response = await clients["bob"].get("/healthz", {"X-Request-Id": "chosen-by-the-client"})
    assert response.status == 200
    request_id = response.headers["X-Request-Id"]
    assert len(request_id) == 32
    assert int(request_id, 16) >= 0
    wait_until(lambda: f"id={request_id}" in stack.nginx.access_log.read_text(), "nginx's log")
    (line,) = [entry for entry in access_lines(stack.psp, 1) if entry["route"] == "/healthz"]
    assert line["request_id"] == request_id
    assert (line["method"], line["status"], line["remote"]) == ("GET", 200, BOB)
    assert line["message"] == "GET /healthz 200"
    assert {"time", "level", "logger", "ms"} <= set(line)


async def test_plain_http_is_sent_to_https(stack: Stack) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.nginx.http_url + "/merchant?x=1", allow_redirects=False) as response,
    ):
        assert response.status == 301
        assert response.headers["Location"] == "https://127.0.0.1/merchant?x=1"


async def test_the_metrics_are_not_passed_on_to_the_public(
    stack: Stack, clients: dict[str, Client]
) -> None:
    # The PSP in this stack serves /metrics on its main port (no metrics
    # port set): the shipped site still keeps it from the internet.
    direct = await clients["alice direct"].get("/metrics")
    assert direct.status == 200
    assert (await clients["alice"].get("/metrics")).status == 404
