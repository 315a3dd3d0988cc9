"""Abuse limits (psp_server/api/guards/abuse.py): rate limits with bounded memory, slow
bodies cut off, unknown codes answered in the time of known ones, and the
security headers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from psp_server.api.guards.abuse import CONTENT_SECURITY_POLICY, Limits
from psp_server.api.guards.bucket_table import BucketTable
from psp_server.core.errors import ConfigError
from psp_server.runtime import cli
from psp_server.runtime.config import FIELDS, Rate, Settings, load, parse_rate
from tests.support.psp import Psp, code_of, start_psp, stop_psp

NO_LIMITS: dict[str, Any] = {
    "rate_qr_per_ip": None,
    "rate_qr_per_token": None,
    "rate_pay_per_ip": None,
    "rate_pay_per_token": None,
}
UNKNOWN_CODE = "A" * 32  # well formed, never issued in a test
MALFORMED_CODE = "not-a-code!"


async def _psp(tmp_path: Path, **settings: Any) -> Psp:
    return await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.05, **settings)


@pytest.fixture
async def unlimited(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await _psp(tmp_path, **NO_LIMITS)
    yield server
    await stop_psp(server)


# Settings.


@pytest.mark.parametrize(
    ("raw", "rate"),
    [
        ("30/10s", Rate(30, 10.0)),
        ("300/min", Rate(300, 60.0)),
        ("5/s", Rate(5, 1.0)),
        ("100/60", Rate(100, 60.0)),
        ("2 / 0.5s", Rate(2, 0.5)),
        ("10/1h", Rate(10, 3600.0)),
        ("off", None),
        ("none", None),
    ],
)
def test_rates_parse(raw: str, rate: Rate | None) -> None:
    assert parse_rate(raw) == rate


def test_rates_come_from_the_environment_and_flags_and_bad_ones_are_all_reported() -> None:
    env = {"SCAN2PAY_RATE_QR_PER_IP": "30/10s", "SCAN2PAY_BODY_TIMEOUT": "2.5"}
    settings = load({"rate_pay_per_token": "off"}, env)
    assert settings.rate_qr_per_ip == Rate(30, 10.0)
    assert settings.rate_pay_per_token is None
    assert settings.body_timeout == 2.5
    assert settings.rate_pay_per_ip == Settings().rate_pay_per_ip

    args = cli.build_parser().parse_args(
        ["serve", "--rate-qr-per-token", "7/s", "--rate-pay-per-ip", "off", "--body-timeout", "3"]
    )
    flags = {k: v for k, v in vars(args).items() if k in FIELDS}
    settings = load(flags, {})
    assert (settings.rate_qr_per_token, settings.rate_pay_per_ip) == (Rate(7, 1.0), None)
    assert settings.body_timeout == 3.0

    with pytest.raises(ConfigError) as caught:
        load({}, {"SCAN2PAY_RATE_QR_PER_IP": "lots", "SCAN2PAY_RATE_PAY_PER_IP": "0/1s"})
    assert [p.split(" ")[0] for p in caught.value.problems] == ["rate_qr_per_ip", "rate_pay_per_ip"]


# Tokens in the limits (the buckets themselves: test_rate_limiter.py).


def test_a_token_is_kept_only_as_a_keyed_hash() -> None:
    token = "wt_" + "x" * 32
    table = BucketTable.in_process()
    first, second = Limits(Settings(), table), Limits(Settings(), BucketTable.in_process())
    key = first.token_key(token)
    assert token not in key
    assert "x" * 8 not in key
    assert key != hashlib.sha256(token.encode()).hexdigest()  # not the database's hash
    assert key == first.token_key(token) != second.token_key(token)
    # Every worker's limits on the one shared table key a token alike.
    assert Limits(Settings(), table).token_key(token) == key


# Rate limits on a live server.


async def test_qr_lookups_are_limited_per_address_with_retry_after(tmp_path: Path) -> None:
    psp = await _psp(tmp_path, **{**NO_LIMITS, "rate_qr_per_ip": Rate(5, 60.0)})
    try:
        statuses = [(await psp.call("GET", f"/Q/{UNKNOWN_CODE}"))[0] for _ in range(5)]
        assert statuses == [404] * 5
        async with psp.http.get(f"{psp.url}/Q/{UNKNOWN_CODE}") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "12"  # 60 s / 5, whole seconds
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            body = await response.json()
        assert body["error"]["code"] == "rate_limited"
        assert set(body["error"]) == {"code", "message"}
        # Other endpoints are not limited.
        assert (await psp.call("GET", "/healthz"))[0] == 200
        assert (await psp.call("POST", "/v1/payments", json={"code": UNKNOWN_CODE}))[0] == 401
    finally:
        await stop_psp(psp)


async def test_payments_are_limited_per_token_and_tokens_are_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    psp = await _psp(tmp_path, **{**NO_LIMITS, "rate_pay_per_token": Rate(3, 60.0)})
    try:
        alice, bob = await psp.wallet(), await psp.wallet()
        alice_statuses = [(await psp.pay(alice, UNKNOWN_CODE))[0] for _ in range(4)]
        assert alice_statuses == [404, 404, 404, 429]
        assert (await psp.pay(bob, UNKNOWN_CODE))[0] == 404
        # Unknown tokens have buckets too: guessing tokens is limited per token.
        bogus = {"Authorization": "Bearer wt_guess"}
        statuses = [
            (await psp.call("POST", "/v1/payments", json={"code": "x"}, headers=bogus))[0]
            for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
    finally:
        await stop_psp(psp)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rate limited" in logged
    for secret in (alice.token, bob.token, "wt_guess"):
        assert secret not in logged
        assert hashlib.sha256(secret.encode()).hexdigest() not in logged


async def test_payments_are_limited_per_address(tmp_path: Path) -> None:
    psp = await _psp(tmp_path, **{**NO_LIMITS, "rate_pay_per_ip": Rate(2, 10.0)})
    try:
        wallets = [await psp.wallet() for _ in range(3)]
        statuses = [(await psp.pay(w, UNKNOWN_CODE))[0] for w in wallets]
        assert statuses == [404, 404, 429]
    finally:
        await stop_psp(psp)


# Slow clients.


async def _drip(url: str, request_head: bytes, *, every: float, total: int) -> tuple[bytes, float]:
    """Sends the head, then a body byte every ``every`` seconds; returns what
    the server answered and when the connection was closed."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    writer.write(request_head)
    await writer.drain()

    async def drip() -> None:
        for _ in range(total):
            await asyncio.sleep(every)
            writer.write(b" ")
            await writer.drain()

    async def read_all() -> bytes:
        got = b""
        # Closing with the client's bytes unread, the server's kernel may
        # answer them with a reset: what came before it is the answer.
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(4096):
                got += chunk
        return got

    dripping = asyncio.create_task(drip())
    try:
        answer = await asyncio.wait_for(read_all(), timeout=15)
    finally:
        dripping.cancel()
        await asyncio.gather(dripping, return_exceptions=True)
        writer.close()
    return answer, time.monotonic() - started


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/checkouts"])
async def test_a_body_sent_a_byte_a_second_is_cut_off_and_others_are_served(
    tmp_path: Path, path: str
) -> None:
    psp = await _psp(tmp_path, body_timeout=1.0)
    try:
        token = (await psp.wallet()).token if path == "/v1/payments" else (await psp.merchant()).key
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 60\r\n\r\n"
        ).encode()
        slow = asyncio.create_task(_drip(psp.url, head, every=1.0, total=60))
        # While the slow clients hang on, everyone else is served at once.
        for _ in range(5):
            await asyncio.sleep(0.2)
            started = time.monotonic()
            assert (await psp.call("GET", "/healthz"))[0] == 200
            assert time.monotonic() - started < 0.5
        answer, took = await slow
    finally:
        await stop_psp(psp)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"request_timeout"' in answer
    assert took < 4.0, f"a slow body held its connection for {took:.1f} s"


async def test_a_body_that_arrives_in_time_is_served(tmp_path: Path) -> None:
    psp = await _psp(tmp_path, body_timeout=2.0)
    try:
        merchant = await psp.merchant()
        body = b'{"order_id":"S-1","amount":5,"currency":"EUR"}'
        head = (
            f"POST /v1/checkouts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {merchant.key}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        # 3 bytes of body at 0.1 s each, then the rest at once.
        host, port = psp.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head)
        for n in range(3):
            await asyncio.sleep(0.1)
            writer.write(body[n : n + 1])
        writer.write(body[3:])
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    finally:
        await stop_psp(psp)
    assert answer.startswith(b"HTTP/1.1 201 "), answer


# Unknown codes take the time of known ones.


def _close(a: float, b: float) -> bool:
    return abs(a - b) < 0.0005 or abs(a - b) < 0.3 * max(a, b)


async def _median_times(psp: Psp, requests: dict[str, Any], rounds: int) -> dict[str, float]:
    """Each request ``rounds`` times, interleaved so that load drifts on all alike."""
    times: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(rounds):
        for name, call in requests.items():
            started = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


async def test_a_lookup_of_an_unknown_code_takes_the_time_of_a_known_one(unlimited: Psp) -> None:
    psp = unlimited
    known = code_of(await psp.checkout(await psp.merchant()))

    def get(code: str) -> Any:
        async def call() -> None:
            async with psp.http.get(
                f"{psp.url}/Q/{code}", headers={"Accept": "application/json"}
            ) as response:
                await response.read()
                assert response.status == (200 if code == known else 404)

        return call

    await _median_times(psp, {"warm": get(known)}, 20)
    medians = await _median_times(
        psp, {"known": get(known), "unknown": get(UNKNOWN_CODE), "bad": get(MALFORMED_CODE)}, 200
    )
    print(f"\nGET /Q/{{code}} medians, ms: { {k: round(v * 1000, 3) for k, v in medians.items()} }")
    assert _close(medians["known"], medians["unknown"]), medians
    assert _close(medians["known"], medians["bad"]), medians


async def test_a_payment_to_an_unknown_code_takes_the_time_of_a_known_one(unlimited: Psp) -> None:
    psp = unlimited
    merchant, wallet = await psp.merchant(), await psp.wallet()
    known = code_of(await psp.checkout(merchant))
    assert (await psp.pay(wallet, known))[0] == 201  # from now on: 409 already_paid

    def pay(code: str, status: int) -> Any:
        async def call() -> None:
            async with psp.http.post(
                f"{psp.url}/v1/payments", json={"code": code}, headers=wallet.auth
            ) as response:
                await response.read()
                assert response.status == status

        return call

    await _median_times(psp, {"warm": pay(known, 409)}, 20)
    medians = await _median_times(
        psp,
        {
            "known": pay(known, 409),
            "unknown": pay(UNKNOWN_CODE, 404),
            "bad": pay(MALFORMED_CODE, 404),
        },
        200,
    )
    print(
        f"\nPOST /v1/payments medians, ms: { {k: round(v * 1000, 3) for k, v in medians.items()} }"
    )
    assert _close(medians["known"], medians["unknown"]), medians
    assert _close(medians["known"], medians["bad"]), medians


# Security headers.


async def test_html_pages_carry_a_strict_policy_that_allows_only_the_psp_itself(
    unlimited: Psp,
) -> None:
    psp = unlimited
    merchant = await psp.merchant("Zoë's <b>Shop</b>")
    known = code_of(await psp.checkout(merchant, description="x"))
    for code, status in ((known, 200), (UNKNOWN_CODE, 404), (MALFORMED_CODE, 404)):
        async with psp.http.get(f"{psp.url}/Q/{code}", headers={"Accept": "text/html"}) as resp:
            html = await resp.text()
            assert (resp.status, resp.content_type) == (status, "text/html")
            headers = resp.headers
        policy = headers["Content-Security-Policy"]
        assert policy == CONTENT_SECURITY_POLICY
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy
        for kind in ("script-src", "style-src", "img-src", "connect-src"):
            assert directives[kind] == "'self'", kind
        assert "<style" not in html
        assert "<script>" not in html
        assert not re.search(r"<[^>]*\son[a-z]+=", html)  # no inline event handlers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


async def test_every_response_is_nosniff_and_json_gets_no_page_policy(unlimited: Psp) -> None:
    psp = unlimited
    merchant = await psp.merchant()
    cases: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
        ("GET", "/healthz", {}, None, 200),
        ("GET", "/openapi.json", {}, None, 200),
        ("GET", f"/Q/{UNKNOWN_CODE}", {"Accept": "application/json"}, None, 404),
        ("GET", "/v1/merchant", {}, None, 401),
        ("GET", "/v1/merchant", merchant.auth, None, 200),
        ("GET", "/no/such/route", {}, None, 404),
        ("DELETE", "/v1/merchant", merchant.auth, None, 405),
        ("POST", "/v1/checkouts", merchant.auth, b"{" + b" " * 20_000 + b"}", 413),
        ("POST", "/v1/checkouts", merchant.auth, b"not json", 400),
    ]
    for method, path, headers, data, status in cases:
        async with psp.http.request(method, psp.url + path, headers=headers, data=data) as resp:
            await resp.read()
            assert resp.status == status, (method, path)
            assert resp.headers["X-Content-Type-Options"] == "nosniff", (method, path)
            assert "Content-Security-Policy" not in resp.headers, (method, path)


async def test_a_stranger_still_hears_401_before_a_body_problem(unlimited: Psp) -> None:
    """The slow-body guard lets each handler order its own answers."""
    status, body = await unlimited.call(
        "POST",
        "/v1/payments",
        data=b"{" + b" " * 20_000 + b"}",
        headers={"Authorization": "Bearer wt_nobody", "Content-Type": "application/json"},
    )
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_many_clients_at_once_stay_within_their_limits(tmp_path: Path) -> None:
    """Forty concurrent lookups against a burst of ten: exactly ten pass."""
    psp = await _psp(tmp_path, **{**NO_LIMITS, "rate_qr_per_ip": Rate(10, 3600.0)})
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one() -> int:
                async with http.get(f"{psp.url}/Q/{UNKNOWN_CODE}") as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(*(one() for _ in range(40)))
        assert sorted(statuses) == [404] * 10 + [429] * 30
    finally:
        await stop_psp(psp)
