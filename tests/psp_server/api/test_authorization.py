"""Who may call what: every operation in openapi.json, read from the document
so that a new endpoint is covered the day it is documented.

* With no credentials, an unknown one, or a credential of the other kind (a
  wallet token where a merchant key belongs, and the reverse): 401
  ``unauthorized`` with ``WWW-Authenticate: Bearer``.
* With another merchant's key: another merchant's checkout, webhook or event
  is answered exactly as an object that does not exist (status and body),
  and is left unchanged.
* Revoked credentials: the API has no revocation yet; that variant is
  skipped (test_a_revoked_credential_is_refused).

Public operations are exempt by the explicit list ``PUBLIC``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import psp_server
from psp_server.runtime.config import parse_networks
from tests.support.db import connect as db_connect
from tests.support.psp import Merchant, Psp, Wallet, code_of, start_psp, stop_psp

SPEC: dict[str, Any] = json.loads(
    Path(psp_server.__file__).with_name("openapi.json").read_text(encoding="utf-8")
)
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in METHODS
]
PUBLIC = {
    ("GET", "/healthz"),
    # For the load balancer and Prometheus; docs/metrics.md says to serve
    # the metrics on an address of their own, off the public port.
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/Q/{code}"),
    # The landing page for a code given as text: it reads no record.
    ("GET", "/pay"),
    ("POST", "/pay"),
    ("GET", "/v1/keys"),
    ("GET", "/.well-known/jwks.json"),
    # A terminal pairing has no credentials yet: it proves itself with the
    # device secret in the body (tests/test_pairing_*.py).
    ("POST", "/v1/pairings"),
    ("POST", "/v1/pairings/{pairing_id}/poll"),
    # A printed till code is scanned by anyone: the code is the credential
    # (tests/psp_server/api/test_static_codes.py).
    ("GET", "/S/{code}"),
    ("POST", "/S/{code}/checkouts"),
}
# A terminal id names a till of the caller's own: another merchant's
# "lane-1" is that merchant's own till, so these are scoped by the key alone
# (test_a_till_of_the_same_name_is_each_merchants_own).
TILL_SCOPED = {
    ("POST", "/v1/terminals/{terminal_id}/static-codes"),
    ("GET", "/v1/terminals/{terminal_id}/static-codes"),
}
PROTECTED = [(m, p, o) for m, p, o in OPERATIONS if (m, p) not in PUBLIC]


TILL = "lane-1"


def _ids(ops: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{m} {p}" for m, p, _ in ops]


def _scheme(operation: dict[str, Any]) -> str:
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    # GET /v1/events also takes a paired terminal's own credential
    # (tests/psp_server/api/test_terminal_events.py): its primary is the merchant's key.
    schemes.discard("terminalCredential")
    assert len(schemes) == 1, schemes
    return str(schemes.pop())


class World:
    """Two merchants: A owns a paid checkout, a webhook and events; B owns nothing."""

    def __init__(self, psp: Psp) -> None:
        self.psp = psp

    async def build(self) -> World:
        psp = self.psp
        self.a: Merchant = await psp.merchant("Shop A")
        self.b: Merchant = await psp.merchant("Shop B")
        self.wallet: Wallet = await psp.wallet(balance=100_000)
        status, self.webhook = await psp.call(
            "POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=self.a.auth
        )
        assert status == 201, self.webhook
        self.checkout = await psp.checkout(self.a, order_id="AUTH-1")
        self.code = code_of(self.checkout)
        assert (await psp.pay(self.wallet, self.code))[0] == 201
        status, events = await psp.call("GET", "/v1/events", headers=self.a.auth)
        assert status == 200, events
        assert events["events"], events
        self.event = events["events"][-1]
        status, self.static = await psp.call(
            "POST",
            f"/v1/terminals/{TILL}/static-codes",
            json={"open_amount": {"currency": "EUR", "min": 100, "max": 10_000}},
            headers=self.a.auth,
        )
        assert status == 201, self.static
        return self

    def path(self, template: str, *, mine: bool) -> str:
        """The path with A's objects, or with well-formed ids of no object."""
        ids = {
            "checkout_id": self.checkout["id"],
            "webhook_id": self.webhook["id"],
            "event_id": self.event["event_id"],
            "code": self.static["code"] if template.startswith("/S/") else self.code,
            "terminal_id": TILL,
            "code_id": self.static["id"],
            "fmt": "png",
            # No pairing is started: a well-formed id of none.
            "pairing_id": "pr_0123456789abcdef0123456789ab",
        }
        if not mine:
            ids = {k: v if k in ("terminal_id", "fmt") else _nobody(v) for k, v in ids.items()}
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)

    def body(self, method: str, template: str) -> Any:
        return {
            "POST /v1/checkouts": {"order_id": "AUTH-2", "amount": 100, "currency": "EUR"},
            "POST /v1/checkouts/{checkout_id}/refunds": {"amount": 100},
            "POST /v1/payments": {"code": self.code},
            "POST /v1/webhooks": {"url": "https://example.com/hook"},
            "POST /v1/terminals/{terminal_id}/static-codes": {},
            "POST /S/{code}/checkouts": {"amount": 500},
        }.get(f"{method} {template}")


def _nobody(identifier: str) -> str:
    """An id of the same shape that names nothing: its random part zeroed."""
    prefix, sep, rest = identifier.partition("_")
    return f"{prefix}{sep}{'0' * len(rest)}" if sep else "A" * len(identifier)


@pytest.fixture
async def psp(db: str) -> AsyncIterator[Psp]:
    """The PSP of tests/conftest.py, allowed to deliver webhooks to loopback:
    A's webhook is on 127.0.0.1, where nothing listens."""
    server = await start_psp(
        db, sweep_interval=0.05, webhook_allow_networks=parse_networks("127.0.0.0/8")
    )
    yield server
    await stop_psp(server)


@pytest.fixture
async def world(psp: Psp) -> World:
    return await World(psp).build()


async def _call(
    world: World, method: str, template: str, headers: dict[str, str], *, mine: bool = True
) -> tuple[int, Any, dict[str, str]]:
    path = world.path(template, mine=mine)
    async with world.psp.http.request(
        method, world.psp.url + path, json=world.body(method, template), headers=headers
    ) as response:
        raw = await response.read()
        body = json.loads(raw) if response.content_type == "application/json" else raw
        return response.status, body, dict(response.headers)


def test_every_operation_is_public_by_the_list_or_declares_its_scheme() -> None:
    assert {(m, p) for m, p, _ in OPERATIONS} >= PUBLIC - {("GET", "/v1/keys")}
    for method, path, operation in OPERATIONS:
        if (method, path) in PUBLIC:
            assert operation.get("security", []) in ([], [{}]), (method, path)
        else:
            assert _scheme(operation) in ("merchantKey", "walletToken"), (method, path)


@pytest.mark.parametrize(("method", "path", "operation"), PROTECTED, ids=_ids(PROTECTED))
async def test_no_unknown_or_wrong_kind_of_credential_gets_in(
    world: World, method: str, path: str, operation: dict[str, Any]
) -> None:
    scheme = _scheme(operation)
    other_kind = world.wallet.auth if scheme == "merchantKey" else world.a.auth
    unknown = "mk_" if scheme == "merchantKey" else "wt_"
    own = (world.a.auth if scheme == "merchantKey" else world.wallet.auth)["Authorization"]
    changed = own[:-1] + ("A" if own[-1] != "A" else "B")
    cases = {
        "no credentials": {},
        "not bearer": {"Authorization": f"Basic {world.a.key}"},
        "empty bearer": {"Authorization": "Bearer "},
        "unknown": {"Authorization": f"Bearer {unknown}{'x' * 32}"},
        "the other kind": other_kind,
        "its own credential with a character changed": {"Authorization": changed},
        "revoked": await _revoked(world, scheme),
    }
    for what, headers in cases.items():
        status, body, answer_headers = await _call(world, method, path, headers)
        assert status == 401, (what, status, body)
        assert body["error"]["code"] == "unauthorized", (what, body)
        assert answer_headers.get("WWW-Authenticate") == "Bearer", what
    # Nothing was done on the way: A's paid checkout is as it was.
    status, checkout = await world.psp.call(
        "GET", f"/v1/checkouts/{world.checkout['id']}", headers=world.a.auth
    )
    assert (status, checkout["status"], checkout["refunded_amount"]) == (200, "paid", 0)


async def _revoked(world: World, scheme: str | None) -> dict[str, str]:
    """A credential that worked until `psp-server ... revoke-...` revoked it."""
    if scheme == "merchantKey":
        merchant = await world.psp.merchant("Revoked Shop")
        await world.psp.storage.replace_secret("merchant", merchant.id, revoke=True)
        return merchant.auth
    wallet = await world.psp.wallet()
    await world.psp.storage.replace_secret("wallet", wallet.id, revoke=True)
    return wallet.auth


SCOPED = [(m, p, o) for m, p, o in PROTECTED if "{" in p and (m, p) not in TILL_SCOPED]


@pytest.mark.parametrize(("method", "path", "operation"), SCOPED, ids=_ids(SCOPED))
async def test_another_merchants_object_is_answered_as_one_that_does_not_exist(
    world: World, method: str, path: str, operation: dict[str, Any]
) -> None:
    assert _scheme(operation) == "merchantKey"
    theirs = await _call(world, method, path, world.b.auth, mine=True)
    nothing = await _call(world, method, path, world.b.auth, mine=False)
    assert theirs[0] == 404, theirs
    assert theirs[:2] == nothing[:2]
    # And it is left as it was.
    status, checkout = await world.psp.call(
        "GET", f"/v1/checkouts/{world.checkout['id']}", headers=world.a.auth
    )
    assert (status, checkout["status"], checkout["refunded_amount"]) == (200, "paid", 0)
    status, hooks = await world.psp.call("GET", "/v1/webhooks", headers=world.a.auth)
    assert [(h["id"], h["enabled"]) for h in hooks["webhooks"]] == [(world.webhook["id"], True)]
    # The owner gets through the same path (the 404 above was not the route).
    mine = await _call(world, method, path, world.a.auth, mine=True)
    assert mine[0] in (200, 201, 202, 204, 409), mine


async def test_a_till_of_the_same_name_is_each_merchants_own(world: World) -> None:
    path = f"/v1/terminals/{TILL}/static-codes"
    status, theirs = await world.psp.call("GET", path, headers=world.b.auth)
    assert (status, theirs["static_codes"]) == (200, [])
    status, made = await world.psp.call("POST", path, json={}, headers=world.b.auth)
    assert status == 201, made
    status, mine = await world.psp.call("GET", path, headers=world.a.auth)
    assert [code["id"] for code in mine["static_codes"]] == [world.static["id"]]
    status, theirs = await world.psp.call("GET", path, headers=world.b.auth)
    assert [code["id"] for code in theirs["static_codes"]] == [made["id"]]


async def test_lists_show_only_the_callers_own(world: World) -> None:
    for path, key in (("/v1/events", "events"), ("/v1/webhooks", "webhooks")):
        status, mine = await world.psp.call("GET", path, headers=world.a.auth)
        assert status == 200, (path, mine)
        assert mine[key], (path, mine)
        status, theirs = await world.psp.call("GET", path, headers=world.b.auth)
        assert (status, theirs[key]) == (200, []), (path, theirs)
    status, merchant = await world.psp.call("GET", "/v1/merchant", headers=world.b.auth)
    assert (status, merchant["id"]) == (200, world.b.id)


async def test_a_merchant_cannot_reuse_another_merchants_order_id_to_reach_it(
    world: World,
) -> None:
    """Order ids are per merchant: B's AUTH-1 is B's own, not A's checkout."""
    status, created = await world.psp.call(
        "POST",
        "/v1/checkouts",
        json={"order_id": "AUTH-1", "amount": 1234, "currency": "EUR"},
        headers=world.b.auth,
    )
    assert status == 201, created
    assert created["id"] != world.checkout["id"]


PUBLIC_OPS = [(m, p, o) for m, p, o in OPERATIONS if (m, p) in PUBLIC]


@pytest.mark.parametrize(("method", "path", "operation"), PUBLIC_OPS, ids=_ids(PUBLIC_OPS))
async def test_public_operations_need_no_credentials(
    world: World, method: str, path: str, operation: dict[str, Any]
) -> None:
    status, _, _ = await _call(world, method, path, {})
    if method == "GET":
        assert status == 200
    else:  # no body: refused for what it lacks, never for want of a credential
        # but a printed code's checkout is made by whoever typed the amount)
        expected = (201,) if path == "/S/{code}/checkouts" else (400, 404, 422, 503)
        assert status in expected, status


async def test_rotated_and_revoked_credentials_are_refused(psp: Psp) -> None:
    shop = await psp.merchant()
    wallet = await psp.wallet()
    checkout = await psp.checkout(shop)
    path = f"/v1/checkouts/{checkout['id']}"
    new_key = await psp.storage.replace_secret("merchant", shop.id, revoke=False)
    assert new_key is not None
    assert new_key != shop.key
    status, body = await psp.call("GET", path, headers=shop.auth)
    assert (status, body["error"]["code"]) == (401, "unauthorized")  # the old key is dead
    assert (await psp.call("GET", path, headers={"Authorization": f"Bearer {new_key}"}))[0] == 200
    assert await psp.storage.replace_secret("merchant", shop.id, revoke=True) is None
    for key in (shop.key, new_key):
        for method, target in (("GET", path), ("GET", "/v1/merchant"), ("GET", "/v1/events")):
            status, _ = await psp.call(method, target, headers={"Authorization": f"Bearer {key}"})
            assert status == 401, (method, target)
    await psp.storage.replace_secret("wallet", wallet.id, revoke=True)
    status, body = await psp.pay(wallet, code_of(checkout))
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_concurrent_principals_do_not_see_each_other(world: World) -> None:
    """Interleaved calls of A and B on one connection pool stay apart."""

    async def as_(merchant: Merchant) -> str:
        status, body = await world.psp.call("GET", "/v1/merchant", headers=merchant.auth)
        assert status == 200
        return str(body["id"])

    ids = await asyncio.gather(*(as_(m) for m in [world.a, world.b] * 20))
    assert ids == [world.a.id, world.b.id] * 20


async def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    psp: Psp,
) -> None:
    """The CLI revokes in its own process; the server believes a key it has
    found for MERCHANT_KEY_CACHE_MS at most (docs/api.md)."""

    from psp_server.storage.sql_storage import MERCHANT_KEY_CACHE_MS

    shop = await psp.merchant()
    assert (await psp.call("GET", "/v1/merchant", headers=shop.auth))[0] == 200  # now cached
    with db_connect(psp.server.settings.db) as other_process:
        other_process.execute(
            "UPDATE merchants SET api_key_hash = 'revoked:x' WHERE id = ?", (shop.id,)
        )
    psp.clock.advance(MERCHANT_KEY_CACHE_MS)
    status, body = await psp.call("GET", "/v1/merchant", headers=shop.auth)
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_wallet_token_revoked_by_another_process_is_refused_within_the_cache_time(
    psp: Psp,
) -> None:
    """A payment's token, once found, is believed for WALLET_TOKEN_CACHE_MS,
    as a merchant key is; then the revocation holds."""

    from psp_server.storage.sql_storage import WALLET_TOKEN_CACHE_MS

    shop = await psp.merchant()
    wallet = await psp.wallet(balance=10_000)
    first = await psp.checkout(shop, order_id="W-1")
    assert (await psp.pay(wallet, code_of(first)))[0] == 201  # the token is now believed
    with db_connect(psp.server.settings.db) as other_process:
        other_process.execute(
            "UPDATE wallets SET token_hash = 'revoked:x' WHERE id = ?", (wallet.id,)
        )
    within = await psp.checkout(shop, order_id="W-2")
    assert (await psp.pay(wallet, code_of(within)))[0] == 201  # still within the second
    psp.clock.advance(WALLET_TOKEN_CACHE_MS)
    after = await psp.checkout(shop, order_id="W-3")
    status, body = await psp.pay(wallet, code_of(after))
    assert (status, body["error"]["code"]) == (401, "unauthorized")
