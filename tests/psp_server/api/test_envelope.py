"""The error envelope (psp_server/api/envelope.py): its exact bytes, its
headers, that every error path of the PSP sends those bytes, and that no
other module of psp_server builds it."""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from psp_server.api.envelope import error_body, error_response
from psp_server.runtime.config import Rate
from tests.support.board import sign_in
from tests.support.psp import Psp, start_psp, stop_psp

PSP_SERVER = Path(__file__).resolve().parents[3] / "psp_server"
UNKNOWN_CODE = "A" * 32


def test_the_body_is_the_documented_envelope_with_json_default_separators() -> None:
    assert error_body("not_found", "no such checkout") == (
        b'{"error": {"code": "not_found", "message": "no such checkout"}}'
    )


def test_text_from_anywhere_stays_ascii_json() -> None:
    body = error_body("invalid_field", 'say "caf\u00e9"\n')
    assert body.isascii()
    assert json.loads(body) == {"error": {"code": "invalid_field", "message": 'say "caf\u00e9"\n'}}


def test_the_response_carries_the_body_and_puts_its_content_type_after_the_callers() -> None:
    response = error_response(429, "rate_limited", "slow down", headers={"Retry-After": "3"})
    assert response.status == 429
    assert response.body == error_body("rate_limited", "slow down")
    assert list(response.headers.items()) == [
        ("Retry-After", "3"),
        ("Content-Type", "application/json"),
    ]


def test_a_caller_may_name_its_own_content_type() -> None:
    response = error_response(401, "unauthorized", "sign in", content_type="application/json; x=1")
    assert list(response.headers.items()) == [("Content-Type", "application/json; x=1")]


def _envelope_literals(path: Path) -> Iterator[int]:
    """Lines of dict literals with an "error" key: a hand-built envelope."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and key.value == "error" for key in node.keys
        ):
            yield node.lineno


def test_no_other_module_builds_the_envelope() -> None:
    found = {
        f"{path.relative_to(PSP_SERVER)}:{line}"
        for path in PSP_SERVER.rglob("*.py")
        if path.name != "envelope.py"
        for line in _envelope_literals(path)
    }
    assert found == set()
    assert list(_envelope_literals(PSP_SERVER / "api" / "envelope.py")), "the gate sees no envelope"


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"), rate_qr_per_ip=Rate(1, 3600.0))
    yield server
    await stop_psp(server)


async def _raw(
    psp: Psp, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, bytes]:
    async with psp.http.request(method, psp.url + path, headers=headers, json=body) as response:
        return response.status, await response.read()


async def test_every_error_path_sends_the_builders_bytes(psp: Psp) -> None:
    """The middleware (an APIError and one of aiohttp's), a refusal stored
    and replayed under an Idempotency-Key, the rate limiter and the board."""
    wallet = await psp.wallet()
    signed = await sign_in(psp, (await psp.merchant()).key)
    keyed = {**wallet.auth, "Idempotency-Key": "k"}
    wants_json = {"Accept": "application/json"}
    unknown = (404, error_body("unknown_code", "no checkout has this code"))
    signed_out = "You are not signed in, or your session has ended. Sign in again."
    unsigned = "This request did not carry the board's security token; nothing was changed."
    assert [
        await _raw(psp, "GET", "/v1/merchant", {}),
        await _raw(psp, "GET", "/nowhere", {}),
        await _raw(psp, "POST", "/v1/payments", keyed, {"code": UNKNOWN_CODE}),
        await _raw(psp, "POST", "/v1/payments", keyed, {"code": UNKNOWN_CODE}),
        await _raw(psp, "GET", f"/Q/{UNKNOWN_CODE}", wants_json),
        await _raw(psp, "GET", f"/Q/{UNKNOWN_CODE}", wants_json),
        await _raw(psp, "GET", "/merchant/session", {}),
        await _raw(psp, "POST", "/merchant/checkouts/co_x/cancel", signed.headers | wants_json),
    ] == [
        (401, error_body("unauthorized", "send Authorization: Bearer <key>")),
        (404, error_body("not_found", "Not Found")),
        unknown,
        unknown,
        unknown,
        (429, error_body("rate_limited", "too many requests; retry after the time in Retry-After")),
        (401, error_body("unauthorized", signed_out)),
        (403, error_body("forbidden", unsigned)),
    ]
