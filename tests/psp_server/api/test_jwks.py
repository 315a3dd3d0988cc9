"""GET /.well-known/jwks.json: the PSP's public keys as a JSON Web Key Set,
checked with a standard JOSE library (joserfc) and nothing of ours: the
set loads, and the PSP's signed events and display tickets verify with the
key their kid names, before and after a rotation."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from scan2pay_common.timefmt import now_ms
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp

# RFC 9864 prefers "Ed25519" to "EdDSA", so joserfc leaves EdDSA out unless
# named (as a verifier names the algorithms it accepts), and warns then.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SecurityWarning)
    EDDSA = JWSRegistry(algorithms=["EdDSA"]).get_alg("EdDSA")


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"))
    yield server
    await stop_psp(server)


async def _key_set(psp: Psp) -> tuple[dict[str, Any], KeySet]:
    async with psp.http.get(psp.url + "/.well-known/jwks.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert "Cache-Control" not in response.headers  # as /v1/keys
        raw = await response.read()
    document: dict[str, Any] = json.loads(raw)
    return document, KeySet.import_key_set(json.loads(raw))


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verifies(signed: dict[str, Any], keys: KeySet) -> bool:
    """docs/signing.md's recipe: the object without its signature, as JSON
    with sorted keys, no spaces and UTF-8 as is."""
    signature = signed["signature"]
    assert signature["alg"] == "Ed25519"
    unsigned = {name: value for name, value in signed.items() if name != "signature"}
    message = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    key = keys.get_by_kid(signature["kid"])
    return EDDSA.verify(message, _unb64url(signature["sig"]), key)


async def _events(psp: Psp, merchant: Merchant) -> list[dict[str, Any]]:
    status, body = await psp.call("GET", "/v1/events", headers=merchant.auth)
    assert status == 200
    events: list[dict[str, Any]] = body["events"]
    return events


async def test_the_set_holds_the_keys_of_v1_keys_as_rfc_8037_keys(psp: Psp) -> None:
    document, keys = await _key_set(psp)
    _, listed = await psp.call("GET", "/v1/keys")
    (key,) = listed["keys"]
    assert document == {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": key["public_key"].removeprefix("ed25519:"),
                "kid": key["kid"],
                "use": "sig",
                "alg": "EdDSA",
            }
        ]
    }
    assert keys.get_by_kid(key["kid"]).as_dict(private=False)["x"] == document["keys"][0]["x"]


async def test_events_and_tickets_verify_with_the_key_the_set_names(psp: Psp) -> None:
    merchant, wallet = await psp.merchant("Café Zoë"), await psp.wallet()
    checkout = await psp.checkout(merchant, terminal_id="lane-1", description="crème brûlée")
    assert (await psp.pay(wallet, code_of(checkout)))[0] == 201
    _, keys = await _key_set(psp)
    (paid,) = await _events(psp, merchant)
    assert _verifies(paid, keys)
    assert _verifies(checkout["display_ticket"], keys)
    assert not _verifies({**paid, "type": "checkout.cancelled"}, keys)


async def test_after_a_rotation_the_set_still_holds_the_key_of_older_events(
    psp: Psp,
) -> None:
    merchant, wallet = await psp.merchant(), await psp.wallet()
    assert (await psp.pay(wallet, code_of(await psp.checkout(merchant))))[0] == 201
    old = psp.storage.signing_key.public.kid
    new = await psp.storage.rotate_signing_key(now=now_ms())
    document, keys = await _key_set(psp)
    assert [jwk["kid"] for jwk in document["keys"]] == [new.kid, old]
    (paid,) = await _events(psp, merchant)
    assert paid["signature"]["kid"] == old
    assert _verifies(paid, keys)
