"""Each request's context (psp_server/api/guards/request_context.py) on a
real server: its id in ``X-Request-Id``, and behind a trusted proxy the
believed client (per-client limits), scheme and host (the derived public
URL, the cookies' flags). The test speaks as the trusted proxy from
127.0.0.1 and as an untrusted client from 127.0.0.2."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from psp_server.runtime.config import Rate, Settings, parse_networks
from psp_server.runtime.server import start_server
from tests.support.board import cookies_of
from tests.support.psp import Psp, start_psp, stop_psp

PROXY = "127.0.0.1"
STRANGER = "127.0.0.2"
UNKNOWN_CODE = "A" * 32
GENERATED = re.compile(r"[0-9a-f]{24}")


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(
        str(tmp_path / "psp.db"),
        trusted_proxies=parse_networks(f"{PROXY}/32"),
        rate_qr_per_ip=Rate(1, 3600.0),
    )
    yield server
    await stop_psp(server)


async def call(
    url: str, source: str, method: str, path: str, headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[aiohttp.ClientResponse, str]:  # fmt: skip
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(
            method, url + path, headers=headers, allow_redirects=False, **kwargs
        ) as response,
    ):
        return response, await response.text()


async def test_every_answer_carries_a_request_id_of_its_own(psp: Psp) -> None:
    seen = set()
    for path in ("/healthz", "/nowhere", "/v1/merchant", f"/Q/{UNKNOWN_CODE}"):
        response, _ = await call(psp.url, STRANGER, "GET", path)
        request_id = response.headers["X-Request-Id"]
        assert GENERATED.fullmatch(request_id), (path, request_id)
        seen.add(request_id)
    assert len(seen) == 4


@pytest.mark.parametrize(
    ("source", "given", "kept"),
    [
        (PROXY, "0123456789abcdef0123456789abcdef", True),
        (PROXY, "req-1.a:b_c", True),
        (STRANGER, "0123456789abcdef0123456789abcdef", False),
        (PROXY, "x" * 129, False),
        (PROXY, "with space", False),
        (PROXY, "new\\nline", False),
        (PROXY, "", False),
        (PROXY, "wt_AbCdEfGhIjKlMnOpQrStUv", False),
        (PROXY, "4111111111111111", False),
    ],
)
async def test_a_request_id_is_taken_only_from_a_trusted_proxy_and_only_if_plain(
    psp: Psp, source: str, given: str, kept: bool
) -> None:
    response, _ = await call(psp.url, source, "GET", "/healthz", {"X-Request-Id": given})
    answered = response.headers["X-Request-Id"]
    if kept:
        assert answered == given
    else:
        assert GENERATED.fullmatch(answered)


async def test_limits_are_kept_per_believed_client_and_a_stranger_cannot_dodge_them(
    psp: Psp,
) -> None:
    path = f"/Q/{UNKNOWN_CODE}"

    async def status(source: str, forwarded_for: str | None) -> int:
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        response, _ = await call(psp.url, source, "GET", path, headers)
        return response.status

    # Two clients behind the proxy: one bucket each.
    assert await status(PROXY, "198.51.100.1") == 404
    assert await status(PROXY, "198.51.100.1") == 429
    assert await status(PROXY, "198.51.100.2") == 404
    # A client cannot pick another's bucket by writing the header itself:
    # the proxy's entry, the rightmost, is the one read.
    assert await status(PROXY, "198.51.100.9, 198.51.100.1") == 429
    # A stranger's header is ignored: it is limited by its own address.
    assert await status(STRANGER, "198.51.100.3") == 404
    assert await status(STRANGER, "198.51.100.4") == 429


async def test_the_derived_public_url_follows_the_trusted_proxy(psp: Psp) -> None:
    merchant = await psp.merchant()
    body = {"order_id": "A-1", "amount": 100, "currency": "EUR"}
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pay.example.com"}

    async def qr_url(source: str, headers: dict[str, str]) -> str:
        response, text = await call(
            psp.url, source, "POST", "/v1/checkouts", {**merchant.auth, **headers}, json=body
        )
        assert response.status in (200, 201), text
        return _qr(text)

    assert (await qr_url(PROXY, forwarded)).startswith("HTTPS://PAY.EXAMPLE.COM/Q/")
    body["order_id"] = "A-2"
    host, port = psp.url.removeprefix("http://").split(":")
    assert (await qr_url(STRANGER, forwarded)).startswith(f"HTTP://{host}:{port}/Q/")


def _qr(text: str) -> str:
    return str(json.loads(text)["qr_url"])


async def test_a_configured_public_url_stays(tmp_path: Path) -> None:
    psp = await start_psp(
        str(tmp_path / "psp.db"),
        trusted_proxies=parse_networks(f"{PROXY}/32"),
        public_url="HTTPS://PAY.SHOP.EXAMPLE",
    )
    try:
        merchant = await psp.merchant()
        headers = {**merchant.auth, "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}
        body = {"order_id": "A-1", "amount": 100, "currency": "EUR"}
        response, text = await call(psp.url, PROXY, "POST", "/v1/checkouts", headers, json=body)
        assert response.status == 201, text
        assert _qr(text).startswith("HTTPS://PAY.SHOP.EXAMPLE/Q/")
    finally:
        await stop_psp(psp)


async def test_cookies_are_secure_when_the_trusted_proxy_served_https(psp: Psp) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"}
    response, _ = await call(psp.url, PROXY, "GET", "/merchant", https)
    ((name, morsel),) = cookies_of(response).items()
    assert (name, bool(morsel["secure"])) == ("__Host-s2p-signin", True)
    # The same header from a stranger changes nothing.
    response, _ = await call(psp.url, STRANGER, "GET", "/merchant", https)
    ((name, morsel),) = cookies_of(response).items()
    assert (name, bool(morsel["secure"])) == ("s2p-signin", False)


async def test_an_ipv6_proxy_and_client_are_believed(tmp_path: Path) -> None:
    server = await start_server(
        Settings(
            host="::1",
            port=0,
            db=str(tmp_path / "psp.db"),
            mqtt=None,
            trusted_proxies=parse_networks("::1/128"),
            rate_qr_per_ip=Rate(1, 3600.0),
        )
    )
    try:
        path = f"/Q/{UNKNOWN_CODE}"

        async def status(forwarded_for: str) -> int:
            response, _ = await call(
                server.url, "::1", "GET", path, {"X-Forwarded-For": forwarded_for}
            )
            return response.status

        assert await status("2001:db8::7") == 404
        assert await status("[2001:DB8::7]:4711") == 429  # the same client, written another way
        assert await status("2001:db8::8") == 404
    finally:
        await server.stop()
