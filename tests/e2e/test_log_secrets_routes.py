"""No secret reaches the JSON log, whichever route it is sent to: every
route the PSP serves (openapi.json's and the board's), called with keys,
tokens, payment codes and card numbers in its path, its query, its headers
and its body, by a psp-server process logging at DEBUG with
``--log-format json``; then every line of its log is read as one JSON
object and searched for every secret in every form."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import psp_server
from psp_server.api.app import make_app
from psp_server.runtime.config import Settings
from tests.support.process import NO_RATE_LIMITS, PspProcess, create_merchant, create_wallet
from tests.support.secret_forms import secret_forms

SPEC = json.loads(Path(psp_server.__file__).with_name("openapi.json").read_text())
METHODS = ("get", "post", "put", "patch", "delete")
CARD = "4111 1111 1111 1111"
CARD_PLAIN = "5500005555555559"
FAKE_KEY = "mk_" + "Zx9" * 12
FAKE_CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def served_routes() -> set[tuple[str, str]]:
    """(method, route pattern) of every route the app serves."""
    app = make_app(Settings())
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "OPTIONS")
    }


def test_the_routes_driven_cover_the_document() -> None:
    documented = {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented <= served_routes()


@pytest.fixture
def psp(tmp_path: Path) -> Iterator[PspProcess]:
    server = PspProcess(
        tmp_path / "psp.db",
        extra=(
            *("--log-format", "json", "--log-level", "DEBUG"),
            *("--trusted-proxies", "127.0.0.1/32", "--webhook-allow-networks", "127.0.0.0/8"),
            *NO_RATE_LIMITS,
        ),
    )
    yield server
    server.stop()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    try:
        async with http.request(method, url, allow_redirects=False, **kwargs) as response:
            body = await asyncio.wait_for(response.read(), 3)
            if response.content_type == "application/json":
                return response.status, json.loads(body)
            return response.status, body
    except TimeoutError:  # a stream (the board's) stays open: what it logged counts
        return 0, None


async def test_no_secret_reaches_the_json_log_from_any_route(psp: PspProcess) -> None:
    merchant = create_merchant(psp.db)
    wallet = create_wallet(psp.db)
    key, token = merchant["api_key"], wallet["token"]
    bearer = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        status, checkout = await _call(
            http,
            "POST",
            psp.url + "/v1/checkouts",
            json={"order_id": "SECRET-1", "amount": 500, "currency": "EUR"},
            headers=bearer,
        )
        assert status == 201, checkout
        code = checkout["qr_url"].rsplit("/", 1)[1]
        status, hook = await _call(
            http,
            "POST",
            psp.url + "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook"},
            headers=bearer,
        )
        assert status == 201, hook
        secrets: dict[str, str] = {
            "merchant key": key,
            "wallet token": token,
            "webhook secret": hook["secret"],
            "payment code": code,
            "card number": CARD_PLAIN,
            "spaced card number": CARD,
            "unknown key": FAKE_KEY,
            "unknown code": FAKE_CODE,
        }
        # Each path parameter in turn gets each secret.
        fills = [code, token, key, CARD_PLAIN, FAKE_CODE]
        calls = 0
        for method, pattern in sorted(served_routes()):
            for n, credential in enumerate((key, token, FAKE_KEY, CARD)):
                fill = fills[n % len(fills)]
                path = re.sub(r"\{[^}]+\}", fill, pattern)
                headers = {
                    "Authorization": f"Bearer {credential}",
                    "Cookie": f"s2p-merchant={key}; __Host-s2p-signin={token}",
                    "Idempotency-Key": token,
                    "X-Demo-Token": token,
                    # From 127.0.0.1, the trusted proxy: a secret as the id is
                    # not taken, nor is a card number as the client.
                    "X-Request-Id": token,
                    "X-Forwarded-For": f"{CARD_PLAIN}, {CARD}",
                    "X-Forwarded-Host": f"{code}.example",
                    "Referer": f"https://shop.example/?key={key}&card={CARD_PLAIN}",
                }
                query = {"token": token, "code": code, "card": CARD, "since": CARD_PLAIN}
                body: dict[str, Any] = {
                    "code": code,
                    "key": key,
                    "token": token,
                    "url": f"https://203.0.113.10/{token}",
                    "order_id": CARD,
                    "amount": CARD_PLAIN,
                    "currency": "EUR",
                    "secret": hook["secret"],
                    "card_number": CARD,
                }
                if method in ("POST", "DELETE") and n % 2:
                    kwargs: dict[str, Any] = {"data": {**body, "csrf": token}}
                elif method in ("POST", "DELETE"):
                    kwargs = {"json": body}
                else:
                    kwargs = {}
                await _call(http, method, psp.url + path, headers=headers, params=query, **kwargs)
                calls += 1
        # The wallet pays with its code, as a phone does, once.
        status, _ = await _call(
            http,
            "POST",
            psp.url + "/v1/payments",
            json={"code": code},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert psp.stop() == 0
    lines = psp.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    access = [record for record in records if record["logger"] == "aiohttp.access"]
    assert len(access) >= calls + 3
    assert all(len(record["request_id"]) == 24 for record in access)
    leaks = [
        f"{what}: {line[:300]}"
        for line in lines
        for what, secret in secrets.items()
        for form in secret_forms(secret)
        if form in line
    ]
    assert not leaks, "\n".join(leaks[:20])
