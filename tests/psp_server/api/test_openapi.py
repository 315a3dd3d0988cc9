"""psp_server/openapi.json against the server: the document is valid OpenAPI
3.1, it lists exactly the routes the app serves, and what a live server
answers (status, media type, body, required headers) is what it documents."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from jsonschema import Draft202012Validator
from multidict import CIMultiDict, CIMultiDictProxy
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012

import psp_server
from psp_server.api.app import make_app
from psp_server.runtime.config import Settings
from tests.support.db import connect as db_connect
from tests.support.documented_responses import (
    DOCUMENTED,
    PRODUCED,
    TESTS,
    DocumentedResponses,
)
from tests.support.gate import gated
from tests.support.psp import Merchant, Psp, Wallet, code_of

SPEC_FILE = Path(psp_server.__file__).with_name("openapi.json")
SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))

# The whole document is one schema resource, so that a $ref to
# "#/components/schemas/..." inside any of its schemas resolves.
SPEC_URI = "urn:scan2pay:psp:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))

_loads = json.loads  # call() has a parameter named json

# Media types answered as bytes (a sticker), checked for their type alone.
BINARY = frozenset({"image/png", "application/pdf"})

OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Each documented (path template, method, status) a live test produced;
# test_every_documented_response_is_exercised reads it last.
SEEN: set[tuple[str, str, str]] = set()


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _pointer(*segments: str) -> str:
    return "".join("/" + _escape(s) for s in segments)


def _at(pointer: str) -> Any:
    node: Any = SPEC
    for raw in pointer.split("/")[1:]:
        node = node[raw.replace("~1", "/").replace("~0", "~")]
    return node


def _validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` (a JSON pointer into the document)."""
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{quote(pointer)}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _assert_valid(pointer: str, instance: Any, what: str) -> None:
    errors = sorted(_validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, (
        f"{what} does not match {pointer}:\n"
        + "\n".join(f"  at {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors)
        + f"\nbody: {instance!r}"
    )


def _template_of(path: str) -> str:
    """The documented path template a concrete path falls under."""
    path = urlsplit(path).path
    matches: list[str] = [
        template
        for template in SPEC["paths"]
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path)
    ]
    assert len(matches) == 1, f"{path} matches documented paths {matches}"
    return matches[0]


@dataclass
class Reply:
    method: str
    path: str
    status: int
    content_type: str
    headers: CIMultiDictProxy[str]
    body: Any  # parsed JSON when the answer is application/json, else the text


async def call(
    psp: Psp,
    method: str,
    path: str,
    *,
    json: Any = None,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Like ``psp.call``, but keeps the media type and headers, which the
    document also describes, and follows no redirect: a 303 is an answer."""
    async with psp.http.request(
        method, psp.url + path, json=json, data=data, headers=headers, allow_redirects=False
    ) as response:
        raw = await response.read()
        body: Any = raw
        if response.content_type == "application/json":
            body = _loads(raw)
        elif response.content_type not in BINARY:
            body = raw.decode()
        return Reply(method, path, response.status, response.content_type, response.headers, body)


def conforms(reply: Reply, status: int, code: str | None = None) -> Any:
    """Asserts that ``reply`` has ``status`` (and error ``code``), that the
    document lists that status for the path and method, and that the media
    type, body and required headers are what it says. Returns the body."""
    assert reply.status == status, f"{reply.method} {reply.path}: {reply.status} {reply.body!r}"
    if code is not None:
        assert reply.body["error"]["code"] == code, reply.body
    template = _template_of(reply.path)
    method = reply.method.lower()
    operation = SPEC["paths"][template].get(method)
    assert operation is not None, f"{reply.method} {template} is not documented"
    where = _pointer("paths", template, method, "responses", str(status))
    response = operation["responses"].get(str(status))
    assert response is not None, (
        f"{reply.method} {template} answered {status}, which the document does not list: "
        f"{reply.body!r}"
    )
    if "$ref" in response:
        where = response["$ref"].removeprefix("#")
        response = _at(where)
    content = response.get("content")
    if content is None:  # documented without a body (a redirect)
        assert reply.body == "", f"{reply.method} {template} {status} has a body: {reply.body!r}"
    else:
        assert reply.content_type in content, (
            f"{reply.method} {template} {status} answered {reply.content_type}; "
            f"documented: {sorted(content)}"
        )
        schema_at = where + _pointer("content", reply.content_type, "schema")
        if isinstance(reply.body, bytes):
            assert _at(schema_at)["contentMediaType"] == reply.content_type
            assert reply.body, f"{reply.method} {reply.path} {status} is empty"
        else:
            _assert_valid(schema_at, reply.body, f"{reply.method} {reply.path} {status}")
    for name, header in response.get("headers", {}).items():
        header_at = where + _pointer("headers", name)
        if "$ref" in header:
            header_at = header["$ref"].removeprefix("#")
            header = _at(header_at)
        if header.get("required"):
            assert name in reply.headers, f"{reply.method} {template} {status} lacks {name}"
        if name in reply.headers:
            _assert_valid(header_at + _pointer("schema"), reply.headers[name], name)
    SEEN.add((template, method, str(status)))
    return reply.body


@pytest.fixture(autouse=True)
def _report_what_was_produced(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(SEEN)
    yield
    request.node.user_properties.append((PRODUCED, sorted(SEEN - before)))


# The document itself.


def test_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    assert SPEC["info"]["title"] == "scan2pay PSP API"
    assert SPEC["info"]["version"] == "1"
    validate_openapi(SPEC)


def test_document_is_pretty_printed() -> None:
    text = SPEC_FILE.read_text(encoding="utf-8")
    assert text == json.dumps(SPEC, indent=2, ensure_ascii=False) + "\n"


def test_schema_examples_match_their_schemas() -> None:
    for name, schema in SPEC["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            _assert_valid(_pointer("components", "schemas", name), example, f"{name} example {i}")


def test_checkout_schema_lists_every_snapshot_field() -> None:
    from scan2pay_common.messages import CheckoutSnapshot

    checkout = SPEC["components"]["schemas"]["Checkout"]
    fields = list(CheckoutSnapshot.__dataclass_fields__)
    # Only a checkout made at a printed till code has these two.
    static_only = {"source", "static_code_id"}
    assert sorted(checkout["required"]) == sorted(set(fields) - static_only)
    # qr_payload is the API's alone (EMV merchants'); events carry the snapshot.
    assert sorted(checkout["properties"]) == sorted([*fields, "qr_payload"])


async def test_routes_and_document_agree(tmp_path: Path) -> None:
    app = make_app(Settings(db=str(tmp_path / "routes.db")))
    served: set[tuple[str, str]] = set()
    heads: set[str] = set()
    for route in app.router.routes():
        assert route.resource is not None, route
        path = route.resource.canonical
        if route.handler.__module__.startswith("psp_server.web."):
            continue  # pages for people and their files (docs/web.md), not the API
        if route.method == "HEAD":
            # aiohttp answers HEAD for every GET; HTTP defines it as GET
            # without a body, so the GET's documentation covers it.
            heads.add(path)
        else:
            served.add((route.method.lower(), path))
    documented = {
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in OPERATIONS
    }
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert heads <= {path for method, path in served if method == "get"}


async def test_served_document_is_the_file(psp: Psp) -> None:
    reply = await call(psp, "GET", "/openapi.json")
    assert conforms(reply, 200) == SPEC
    async with psp.http.get(psp.url + "/openapi.json") as response:
        assert await response.read() == SPEC_FILE.read_bytes()


# A live server, endpoint by endpoint.


async def test_healthz(psp: Psp) -> None:
    body = conforms(await call(psp, "GET", "/healthz"), 200)
    assert body["mqtt"] == "disabled"


async def test_readyz(psp: Psp) -> None:
    body = conforms(await call(psp, "GET", "/readyz"), 200)
    assert body["status"] == "ready"
    # A database a migration behind this server's code: not ready.
    with db_connect(psp.server.settings.db) as conn:
        conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = '0010_event_terminal_id'")
        conn.commit()
    body = conforms(await call(psp, "GET", "/readyz"), 503)
    assert [reason["code"] for reason in body["reasons"]] == ["schema_outdated"]


async def test_metrics(psp: Psp) -> None:
    text = conforms(await call(psp, "GET", "/metrics"), 200)
    assert "scan2pay_outbox_pending 0.0" in text


async def test_merchant(psp: Psp) -> None:
    merchant = await psp.merchant("Corner Café")
    body = conforms(await call(psp, "GET", "/v1/merchant", headers=merchant.auth), 200)
    assert body == {
        "id": merchant.id,
        "name": "Corner Café",
        "qr_format": "url",
        "mcc": None,
        "country": None,
        "city": None,
        "emv_profile": "scan2pay",
        "emv_gui": None,
    }
    for headers in (
        None,
        {"Authorization": "Bearer mk_not-a-key"},
        {"Authorization": f"Basic {merchant.key}"},
        {"Authorization": "Bearer "},
    ):
        conforms(await call(psp, "GET", "/v1/merchant", headers=headers), 401, "unauthorized")


async def test_update_merchant(psp: Psp) -> None:
    merchant = await psp.merchant("Café Müller")
    emv = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}

    async def patch(body: Any, headers: dict[str, str] | None = merchant.auth) -> Reply:
        return await call(psp, "PATCH", "/v1/merchant", json=body, headers=headers)

    before = conforms(await call(psp, "GET", "/v1/merchant", headers=merchant.auth), 200)
    for bad, code in [
        ({"qr_format": "emv"}, "emv_settings_missing"),
        ({"qr_format": "emv", "mcc": "5814", "country": "DE"}, "emv_settings_missing"),
        ({**emv, "mcc": "58144"}, "invalid_mcc"),
        ({**emv, "country": "Germany"}, "invalid_country"),
        ({**emv, "city": "Frankfurt am Main"}, "invalid_city"),
        ({**emv, "emv_profile": "nope"}, "invalid_emv_profile"),
        ({**emv, "emv_gui": "with space"}, "invalid_emv"),
        ({**emv, "qr_format": "barcode"}, "invalid_qr_format"),
        ({**emv, "mcc": 5814}, "invalid_type"),
        ({**emv, "colour": "red"}, "unknown_field"),
        ({}, "invalid_body"),
        # PIX carries https:// URLs only; this PSP's public URL is http://.
        ({**emv, "emv_profile": "pix"}, "invalid_emv"),
    ]:
        conforms(await patch(bad), 422, code)
    # Nothing of a refused change was kept.
    assert conforms(await call(psp, "GET", "/v1/merchant", headers=merchant.auth), 200) == before
    conforms(
        await call(psp, "PATCH", "/v1/merchant", data=b"{", headers=merchant.auth),
        400,
        "invalid_json",
    )
    conforms(await patch(emv, headers=None), 401, "unauthorized")

    body = conforms(await patch(emv), 200)
    assert body == {**before, **emv}
    assert conforms(await call(psp, "GET", "/v1/merchant", headers=merchant.auth), 200) == body
    # Fields left out keep their values; null clears an optional one.
    changed = conforms(await patch({"emv_gui": "de.example.pay"}), 200)
    assert changed == {**body, "emv_gui": "de.example.pay"}
    assert conforms(await patch({"emv_gui": None}), 200) == body
    # Back to bare URLs: the EMV fields stay for next time.
    assert conforms(await patch({"qr_format": "url"}), 200) == {**body, "qr_format": "url"}


async def test_checkout_of_an_emv_merchant_carries_its_payload(psp: Psp) -> None:
    from brcode.utils.brcodeId import jsonFromBrcode  # an independent EMV/PIX parser

    from scan2pay_common.emv import parse_payload
    from scan2pay_common.signing import verify

    merchant = await psp.merchant("Café Müller")
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
    conforms(await call(psp, "PATCH", "/v1/merchant", json=settings, headers=merchant.auth), 200)
    order = {"order_id": "A-9", "amount": 1234, "currency": "EUR", "terminal_id": "till-1"}
    created = conforms(
        await call(psp, "POST", "/v1/checkouts", json=order, headers=merchant.auth), 201
    )
    payload = created["qr_payload"]
    fields = jsonFromBrcode(payload)
    assert fields["01"] == "12"
    assert fields["26"] == {"00": "org.scan2pay", "01": created["qr_url"]}
    assert [fields[tag] for tag in ("52", "53", "54", "58")] == ["5814", "978", "12.34", "DE"]
    assert (fields["59"], fields["60"]) == ("Cafe Muller", "Berlin")
    assert fields["62"]["07"] == "till-1"
    assert parse_payload(payload).url() == created["qr_url"]
    # The display ticket signs the payload with the rest.
    ticket = created["display_ticket"]
    assert ticket["qr_payload"] == payload
    assert verify(ticket, [psp.storage.signing_key.public])

    path = f"/v1/checkouts/{created['id']}"
    got = conforms(await call(psp, "GET", path, headers=merchant.auth), 200)
    assert got["qr_payload"] == payload
    assert got["qr_url"] == created["qr_url"]
    # A retry answers the same payload.
    again = conforms(
        await call(psp, "POST", "/v1/checkouts", json=order, headers=merchant.auth), 200
    )
    assert again["qr_payload"] == payload

    # A merchant back on bare URLs: no qr_payload.
    back = {"qr_format": "url"}
    conforms(await call(psp, "PATCH", "/v1/merchant", json=back, headers=merchant.auth), 200)
    assert "qr_payload" not in conforms(await call(psp, "GET", path, headers=merchant.auth), 200)


async def test_keys(psp: Psp) -> None:
    from scan2pay_common.signing import PublicKey, verify

    body = conforms(await call(psp, "GET", "/v1/keys"), 200)
    (key,) = body["keys"]
    assert key["active"]
    assert key["public_key"] == psp.storage.signing_key.public.text
    # The display ticket a create answers verifies against the listed key.
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, terminal_id="till-1")
    assert verify(checkout["display_ticket"], [PublicKey.parse(key["public_key"])])


async def test_jwks(psp: Psp) -> None:
    body = conforms(await call(psp, "GET", "/.well-known/jwks.json"), 200)
    (jwk,) = body["keys"]
    assert jwk["kid"] == psp.storage.signing_key.public.kid


async def test_create_checkout(psp: Psp) -> None:
    merchant = await psp.merchant()
    minimal = {"order_id": "A-1", "amount": 1234, "currency": "EUR"}
    body = conforms(
        await call(psp, "POST", "/v1/checkouts", json=minimal, headers=merchant.auth), 201
    )
    assert body["status"] == "pending"
    assert body["terminal_id"] is None
    assert body["description"] is None

    full = {
        "order_id": "A-2",
        "amount": 1500,
        "currency": "KWD",
        "terminal_id": "till-1",
        "expires_in": 86_400,
        "description": "2 coffees, 1 croissant ☕",
    }
    created = conforms(
        await call(psp, "POST", "/v1/checkouts", json=full, headers=merchant.auth), 201
    )
    assert created["terminal_id"] == "till-1"
    assert created["description"] == full["description"]

    # A retry of the same body, explicit defaults included, is the same checkout.
    again = {**minimal, "expires_in": 300, "description": None, "terminal_id": None}
    retried = conforms(
        await call(psp, "POST", "/v1/checkouts", json=again, headers=merchant.auth), 200
    )
    assert retried == body

    conflict = {**minimal, "amount": 1235}
    conforms(
        await call(psp, "POST", "/v1/checkouts", json=conflict, headers=merchant.auth),
        409,
        "order_conflict",
    )

    # Another merchant may use the same order id.
    other = await psp.merchant("Other Shop")
    conforms(await call(psp, "POST", "/v1/checkouts", json=minimal, headers=other.auth), 201)


async def test_create_checkout_retry_returns_current_status(psp: Psp) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, order_id="R-1")
    conforms(
        await call(psp, "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=merchant.auth),
        200,
    )
    body = {"order_id": "R-1", "amount": 1234, "currency": "EUR"}
    retried = conforms(
        await call(psp, "POST", "/v1/checkouts", json=body, headers=merchant.auth), 200
    )
    assert retried["id"] == checkout["id"]
    assert retried["status"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"colour": "red"}, "unknown_field"),
        ({"order_id": None}, "invalid_order_id"),
        ({"order_id": ""}, "invalid_order_id"),
        ({"order_id": "A/1"}, "invalid_order_id"),
        ({"order_id": "x" * 65}, "invalid_order_id"),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": -5}, "invalid_amount"),
        ({"amount": 12.34}, "invalid_amount"),
        ({"amount": "1234"}, "invalid_amount"),
        ({"amount": True}, "invalid_amount"),
        ({"amount": 100_000_001}, "amount_too_large"),
        ({"currency": "eur"}, "invalid_currency"),
        ({"currency": "ABC"}, "invalid_currency"),
        ({"currency": "XAU"}, "invalid_currency"),
        ({"terminal_id": "till 1"}, "invalid_terminal_id"),
        ({"terminal_id": 7}, "invalid_terminal_id"),
        ({"expires_in": 0}, "invalid_expires_in"),
        ({"expires_in": 86_401}, "invalid_expires_in"),
        ({"expires_in": "300"}, "invalid_expires_in"),
        ({"expires_in": None}, "invalid_expires_in"),
        ({"description": "x" * 201}, "invalid_description"),
        ({"description": "line\nbreak"}, "invalid_description"),
        ({"description": 5}, "invalid_description"),
    ],
)
async def test_create_checkout_invalid(psp: Psp, change: dict[str, Any], code: str) -> None:
    merchant = await psp.merchant()
    body = {"order_id": "A-1", "amount": 1234, "currency": "EUR", **change}
    reply = await call(psp, "POST", "/v1/checkouts", json=body, headers=merchant.auth)
    conforms(reply, 422, code)
    # And the document's request schema refuses it too.
    errors = list(_validator("/components/schemas/CheckoutRequest").iter_errors(body))
    # Two rules are the server's, not the schema's: the maximum amount is a
    # setting, and the ISO 4217 list follows the standard's amendments.
    if change not in ({"amount": 100_000_001}, {"currency": "ABC"}, {"currency": "XAU"}):
        assert errors, f"CheckoutRequest accepts {body!r}"


@pytest.mark.parametrize("missing", ["order_id", "amount", "currency"])
async def test_create_checkout_missing_field(psp: Psp, missing: str) -> None:
    merchant = await psp.merchant()
    body = {"order_id": "A-1", "amount": 1234, "currency": "EUR"}
    del body[missing]
    reply = await call(psp, "POST", "/v1/checkouts", json=body, headers=merchant.auth)
    conforms(reply, 422, "missing_field")


async def test_create_checkout_bad_requests(psp: Psp) -> None:
    merchant = await psp.merchant()
    for raw in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        reply = await call(psp, "POST", "/v1/checkouts", data=raw, headers=merchant.auth)
        conforms(reply, 400, "invalid_json")
    huge = {"order_id": "A-1", "amount": 1, "currency": "EUR", "description": "x" * 20_000}
    reply = await call(psp, "POST", "/v1/checkouts", json=huge, headers=merchant.auth)
    conforms(reply, 413, "payload_too_large")
    body = {"order_id": "A-1", "amount": 1234, "currency": "EUR"}
    for headers in (None, {"Authorization": "Bearer mk_nope"}):
        reply = await call(psp, "POST", "/v1/checkouts", json=body, headers=headers)
        conforms(reply, 401, "unauthorized")


async def test_get_checkout(psp: Psp) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, terminal_id="till-1", description="tea")
    path = f"/v1/checkouts/{checkout['id']}"
    del checkout["display_ticket"]  # the create's answer has it, the checkout not
    assert conforms(await call(psp, "GET", path, headers=merchant.auth), 200) == checkout
    conforms(await call(psp, "GET", path), 401, "unauthorized")
    other = await psp.merchant("Other Shop")
    conforms(await call(psp, "GET", path, headers=other.auth), 404, "not_found")
    for missing in ("co_00000000000000000000", "no%20such", "x" * 65):
        reply = await call(psp, "GET", f"/v1/checkouts/{missing}", headers=merchant.auth)
        conforms(reply, 404, "not_found")


async def test_cancel_checkout(psp: Psp) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant)
    path = f"/v1/checkouts/{checkout['id']}/cancel"
    conforms(await call(psp, "POST", path), 401, "unauthorized")
    other = await psp.merchant("Other Shop")
    conforms(await call(psp, "POST", path, headers=other.auth), 404, "not_found")
    reply = await call(
        psp, "POST", "/v1/checkouts/co_00000000000000000000/cancel", headers=merchant.auth
    )
    conforms(reply, 404, "not_found")

    body = conforms(await call(psp, "POST", path, headers=merchant.auth), 200)
    assert body["status"] == "cancelled"
    # Cancelling again changes nothing.
    assert conforms(await call(psp, "POST", path, headers=merchant.auth), 200) == body
    get = await call(psp, "GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
    assert conforms(get, 200)["status"] == "cancelled"


async def _paid_checkout(psp: Psp, merchant: Merchant, wallet: Wallet) -> dict[str, Any]:
    checkout = await psp.checkout(merchant)
    reply = await call(
        psp, "POST", "/v1/payments", json={"code": code_of(checkout)}, headers=wallet.auth
    )
    payment = conforms(reply, 201)
    assert payment["checkout_id"] == checkout["id"]
    assert (payment["amount"], payment["currency"]) == (checkout["amount"], checkout["currency"])
    return checkout


async def test_pay(psp: Psp) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet("EUR", 10_000)
    checkout = await _paid_checkout(psp, merchant, wallet)
    code = code_of(checkout)

    again = await call(psp, "POST", "/v1/payments", json={"code": code}, headers=wallet.auth)
    conforms(again, 409, "already_paid")
    cancel = await call(
        psp, "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=merchant.auth
    )
    conforms(cancel, 409, "already_paid")
    get = await call(psp, "GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
    assert conforms(get, 200)["status"] == "paid"
    info = await call(psp, "GET", f"/Q/{code}", headers={"Accept": "application/json"})
    assert conforms(info, 200)["status"] == "paid"


async def test_pay_with_lower_case_code(psp: Psp) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    checkout = await psp.checkout(merchant)
    reply = await call(
        psp,
        "POST",
        "/v1/payments",
        json={"code": f" {code_of(checkout).lower()} "},
        headers=wallet.auth,
    )
    conforms(reply, 201)


async def test_pay_refusals(psp: Psp) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, amount=1234, currency="EUR")
    code = code_of(checkout)

    poor = await psp.wallet("EUR", 1233)
    reply = await call(psp, "POST", "/v1/payments", json={"code": code}, headers=poor.auth)
    conforms(reply, 402, "insufficient_funds")

    dollars = await psp.wallet("USD", 1_000_000)
    reply = await call(psp, "POST", "/v1/payments", json={"code": code}, headers=dollars.auth)
    conforms(reply, 422, "currency_mismatch")

    wallet = await psp.wallet("EUR", 10_000)
    for unknown in ("A" * 32, "not a code", "A" * 65, ""):
        reply = await call(psp, "POST", "/v1/payments", json={"code": unknown}, headers=wallet.auth)
        conforms(reply, 404, "unknown_code")

    for body, error in (
        ({"code": 5}, "invalid_code"),
        ({"code": None}, "invalid_code"),
        ({}, "missing_field"),
        ({"code": code, "amount": 1234}, "unknown_field"),
    ):
        reply = await call(psp, "POST", "/v1/payments", json=body, headers=wallet.auth)
        conforms(reply, 422, error)

    reply = await call(psp, "POST", "/v1/payments", data=b"{", headers=wallet.auth)
    conforms(reply, 400, "invalid_json")
    reply = await call(
        psp, "POST", "/v1/payments", json={"code": "A" * 20_000}, headers=wallet.auth
    )
    conforms(reply, 413, "payload_too_large")
    for headers in (None, {"Authorization": "Bearer wt_nope"}, merchant.auth):
        reply = await call(psp, "POST", "/v1/payments", json={"code": code}, headers=headers)
        conforms(reply, 401, "unauthorized")

    # None of the refusals paid it.
    get = await call(psp, "GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
    assert conforms(get, 200)["status"] == "pending"


async def test_pay_cancelled(psp: Psp) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    checkout = await psp.checkout(merchant)
    await call(psp, "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=merchant.auth)
    reply = await call(
        psp, "POST", "/v1/payments", json={"code": code_of(checkout)}, headers=wallet.auth
    )
    conforms(reply, 410, "cancelled")
    info = await call(psp, "GET", f"/Q/{code_of(checkout)}")
    assert conforms(info, 200)["status"] == "cancelled"


async def test_expired(psp: Psp) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    request = {"order_id": "E-1", "amount": 1234, "currency": "EUR", "expires_in": 1}
    to_pay = await psp.checkout(merchant, **request)
    to_cancel = await psp.checkout(merchant, **{**request, "order_id": "E-2"})
    psp.pass_expiry(to_cancel)

    reply = await call(
        psp, "POST", "/v1/payments", json={"code": code_of(to_pay)}, headers=wallet.auth
    )
    conforms(reply, 410, "expired")
    reply = await call(
        psp, "POST", f"/v1/checkouts/{to_cancel['id']}/cancel", headers=merchant.auth
    )
    conforms(reply, 410, "expired")
    for checkout in (to_pay, to_cancel):
        get = await call(psp, "GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
        assert conforms(get, 200)["status"] == "expired"
        info = await call(
            psp, "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"}
        )
        assert conforms(info, 200)["status"] == "expired"
    retried = await call(psp, "POST", "/v1/checkouts", json=request, headers=merchant.auth)
    assert conforms(retried, 200)["status"] == "expired"


async def test_lookup_code(psp: Psp) -> None:
    merchant = await psp.merchant("Café Ünïcode")
    checkout = await psp.checkout(merchant)
    code = code_of(checkout)
    expected = {
        "checkout_id": checkout["id"],
        "merchant": {"id": merchant.id, "name": "Café Ünïcode"},
        "amount": checkout["amount"],
        "currency": checkout["currency"],
        "status": "pending",
        "expires_at": checkout["expires_at"],
    }
    for accept in ("application/json", "text/html, application/json;q=0.9", "*/*"):
        reply = await call(psp, "GET", f"/Q/{code}", headers={"Accept": accept})
        assert reply.content_type == "application/json", accept
        assert conforms(reply, 200) == expected
    reply = await call(psp, "GET", f"/Q/{code.lower()}", headers={"Accept": "application/json"})
    assert conforms(reply, 200) == expected

    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    reply = await call(psp, "GET", f"/Q/{code}", headers=browser)
    assert reply.content_type == "text/html"
    page = conforms(reply, 200)
    assert "Café Ünïcode" in page
    assert "12.34" in page

    for unknown in ("A" * 32, "bad!", "A" * 65):
        reply = await call(psp, "GET", f"/Q/{unknown}", headers={"Accept": "application/json"})
        conforms(reply, 404, "unknown_code")
        reply = await call(psp, "GET", f"/Q/{unknown}", headers=browser)
        assert reply.content_type == "text/html"
        assert "Unknown code" in conforms(reply, 404)


# Idempotency keys, refunds and the events feed.


def _keyed(auth: dict[str, str], key: str) -> dict[str, str]:
    return {**auth, "Idempotency-Key": key}


async def test_create_checkout_with_an_idempotency_key(
    psp: Psp, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = await psp.merchant()
    body = {"order_id": "K-1", "amount": 1234, "currency": "EUR"}
    headers = _keyed(merchant.auth, "key-1")
    first = await call(psp, "POST", "/v1/checkouts", json=body, headers=headers)
    assert conforms(first, 201)["refunded_amount"] == 0
    assert "Idempotent-Replayed" not in first.headers
    again = await call(psp, "POST", "/v1/checkouts", json=body, headers=headers)
    assert conforms(again, 201) == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    mismatch = await call(psp, "POST", "/v1/checkouts", json={**body, "amount": 1}, headers=headers)
    conforms(mismatch, 422, "idempotency_mismatch")
    bad_key = _keyed(merchant.auth, "x" * 256)
    reply = await call(psp, "POST", "/v1/checkouts", json=body, headers=bad_key)
    conforms(reply, 400, "invalid_idempotency_key")
    # A stored refusal replays with its status and the header.
    conflict = {**body, "amount": 999}
    for _ in range(2):
        reply = await call(
            psp, "POST", "/v1/checkouts", json=conflict, headers=_keyed(merchant.auth, "k-2")
        )
        conforms(reply, 409, "order_conflict")
    assert reply.headers["Idempotent-Replayed"] == "true"

    async with gated(psp, "create_checkout_reply", monkeypatch) as gate:
        held = {**body, "order_id": "K-2"}
        slow = _keyed(merchant.auth, "slow")
        first_task = asyncio.create_task(
            call(psp, "POST", "/v1/checkouts", json=held, headers=slow)
        )
        await gate.wait_entered()
        reply = await call(psp, "POST", "/v1/checkouts", json=held, headers=slow)
        conforms(reply, 409, "request_in_progress")
        gate.opened.set()
        conforms(await first_task, 201)


async def test_pay_with_an_idempotency_key(psp: Psp, monkeypatch: pytest.MonkeyPatch) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet("EUR", 10_000)
    checkout = await psp.checkout(merchant)
    body = {"code": code_of(checkout)}
    headers = _keyed(wallet.auth, "pay-1")
    first = conforms(await call(psp, "POST", "/v1/payments", json=body, headers=headers), 201)
    again = await call(psp, "POST", "/v1/payments", json=body, headers=headers)
    assert conforms(again, 201) == first
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await psp.checkout(merchant, order_id="other")
    reply = await call(psp, "POST", "/v1/payments", json={"code": code_of(other)}, headers=headers)
    conforms(reply, 422, "idempotency_mismatch")
    reply = await call(psp, "POST", "/v1/payments", json=body, headers=_keyed(wallet.auth, ""))
    conforms(reply, 400, "invalid_idempotency_key")

    async with gated(psp, "pay_reply", monkeypatch) as gate:
        slow = _keyed(wallet.auth, "slow")
        held = {"code": code_of(other)}
        first_task = asyncio.create_task(call(psp, "POST", "/v1/payments", json=held, headers=slow))
        await gate.wait_entered()
        reply = await call(psp, "POST", "/v1/payments", json=held, headers=slow)
        conforms(reply, 409, "request_in_progress")
        gate.opened.set()
        conforms(await first_task, 201)


async def test_refund(psp: Psp, monkeypatch: pytest.MonkeyPatch) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet("EUR", 10_000)
    checkout = await _paid_checkout(psp, merchant, wallet)
    path = f"/v1/checkouts/{checkout['id']}/refunds"

    refund = conforms(
        await call(psp, "POST", path, json={"amount": 234}, headers=merchant.auth), 201
    )
    assert (refund["checkout_id"], refund["amount"], refund["currency"]) == (
        checkout["id"],
        234,
        "EUR",
    )
    get = await call(psp, "GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
    assert conforms(get, 200)["refunded_amount"] == 234
    reply = await call(psp, "POST", path, json={"amount": 1001}, headers=merchant.auth)
    conforms(reply, 422, "refund_exceeds_payment")

    keyed = _keyed(merchant.auth, "r-1")
    first = conforms(await call(psp, "POST", path, json={"amount": 1}, headers=keyed), 201)
    again = await call(psp, "POST", path, json={"amount": 1}, headers=keyed)
    assert conforms(again, 201) == first
    assert again.headers["Idempotent-Replayed"] == "true"
    reply = await call(psp, "POST", path, json={"amount": 2}, headers=keyed)
    conforms(reply, 422, "idempotency_mismatch")
    reply = await call(psp, "POST", path, json={"amount": 1}, headers=_keyed(merchant.auth, "é"))
    conforms(reply, 400, "invalid_idempotency_key")

    for body, code in (
        ({}, "missing_field"),
        ({"amount": 1, "note": "x"}, "unknown_field"),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": "1"}, "invalid_amount"),
        ({"amount": 100_000_001}, "amount_too_large"),
    ):
        conforms(await call(psp, "POST", path, json=body, headers=merchant.auth), 422, code)
        errors = list(_validator("/components/schemas/RefundRequest").iter_errors(body))
        if code != "amount_too_large":  # the maximum is a setting, not the schema's
            assert errors, f"RefundRequest accepts {body!r}"
    conforms(await call(psp, "POST", path, data=b"{", headers=merchant.auth), 400, "invalid_json")
    huge = {"amount": 1, "pad": "x" * 20_000}
    conforms(await call(psp, "POST", path, json=huge, headers=merchant.auth), 413)
    for headers in (None, {"Authorization": "Bearer mk_nope"}, wallet.auth):
        reply = await call(psp, "POST", path, json={"amount": 1}, headers=headers)
        conforms(reply, 401, "unauthorized")
    other = await psp.merchant("Other Shop")
    reply = await call(psp, "POST", path, json={"amount": 1}, headers=other.auth)
    conforms(reply, 404, "not_found")
    reply = await call(
        psp,
        "POST",
        "/v1/checkouts/co_00000000000000000000/refunds",
        json={"amount": 1},
        headers=merchant.auth,
    )
    conforms(reply, 404, "not_found")
    pending = await psp.checkout(merchant, order_id="pending")
    reply = await call(
        psp,
        "POST",
        f"/v1/checkouts/{pending['id']}/refunds",
        json={"amount": 1},
        headers=merchant.auth,
    )
    conforms(reply, 409, "not_paid")

    async with gated(psp, "refund_reply", monkeypatch) as gate:
        slow = _keyed(merchant.auth, "slow")
        first_task = asyncio.create_task(call(psp, "POST", path, json={"amount": 1}, headers=slow))
        await gate.wait_entered()
        reply = await call(psp, "POST", path, json={"amount": 1}, headers=slow)
        conforms(reply, 409, "request_in_progress")
        gate.opened.set()
        conforms(await first_task, 201)


async def test_events(psp: Psp) -> None:
    merchant = await psp.merchant()
    assert conforms(await call(psp, "GET", "/v1/events", headers=merchant.auth), 200) == {
        "events": [],
        "next_after": 0,
    }
    checkout = await _paid_checkout(psp, merchant, await psp.wallet())
    await call(
        psp,
        "POST",
        f"/v1/checkouts/{checkout['id']}/refunds",
        json={"amount": 34},
        headers=merchant.auth,
    )
    cancelled = await psp.checkout(merchant, order_id="C-1")
    await call(psp, "POST", f"/v1/checkouts/{cancelled['id']}/cancel", headers=merchant.auth)
    page = conforms(await call(psp, "GET", "/v1/events?limit=2", headers=merchant.auth), 200)
    assert [e["type"] for e in page["events"]] == ["checkout.paid", "checkout.refunded"]
    rest = await call(psp, "GET", "/v1/events?after=2&limit=1000", headers=merchant.auth)
    assert [e["type"] for e in conforms(rest, 200)["events"]] == ["checkout.cancelled"]
    for query, code in (
        ("?after=-1", "invalid_after"),
        ("?limit=1001", "invalid_limit"),
        ("?page=2", "unknown_parameter"),
    ):
        reply = await call(psp, "GET", f"/v1/events{query}", headers=merchant.auth)
        conforms(reply, 422, code)
    conforms(await call(psp, "GET", "/v1/events"), 401, "unauthorized")


def test_event_schema_accepts_every_kind_of_event() -> None:
    """The document's Event is the MQTT contract's CheckoutEvent."""
    from scan2pay_common.messages import STATUS_FOR_EVENT

    documented = SPEC["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
    assert sorted(documented) == sorted(STATUS_FOR_EVENT)


# Bugs this test file found once; kept so that they stay fixed.


@pytest.mark.parametrize("path", ["/v1/checkouts", "/v1/payments"])
async def test_deeply_nested_body_is_invalid_json(psp: Psp, path: str) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    auth = merchant.auth if path == "/v1/checkouts" else wallet.auth
    reply = await call(psp, "POST", path, data=b"[" * 5000 + b"]" * 5000, headers=auth)
    conforms(reply, 400, "invalid_json")


async def test_lone_surrogate_in_description_is_refused(psp: Psp) -> None:
    merchant = await psp.merchant()
    raw = b'{"order_id": "S-1", "amount": 100, "currency": "EUR", "description": "\\ud800"}'
    reply = await call(psp, "POST", "/v1/checkouts", data=raw, headers=merchant.auth)
    conforms(reply, 422, "invalid_description")


async def test_pay_checks_the_token_before_the_body(psp: Psp) -> None:
    headers = {"Authorization": "Bearer wt_nope"}
    for body in ({"code": "not a code"}, {"code": 5}, {}):
        reply = await call(psp, "POST", "/v1/payments", json=body, headers=headers)
        conforms(reply, 401, "unauthorized")


async def test_webhooks(db: str) -> None:
    from psp_server.runtime.config import parse_networks
    from tests.support.openapi_webhooks import exercise
    from tests.support.psp import start_psp, stop_psp

    # Its endpoint is a closed port on 127.0.0.1: loopback must be allowed.
    psp = await start_psp(
        db, sweep_interval=0.05, webhook_allow_networks=parse_networks("127.0.0.0/8")
    )
    try:
        await exercise(psp, call, conforms)
    finally:
        await stop_psp(psp)


async def test_landing_page(psp: Psp) -> None:
    """A payment code given as text: the form, the way on, a refusal."""
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant)
    html_accept = {"Accept": "text/html"}
    conforms(await call(psp, "GET", "/pay", headers=html_accept), 200)
    on = conforms(await call(psp, "GET", f"/pay?code={quote(checkout['qr_url'])}"), 303)
    assert on == ""
    conforms(await call(psp, "GET", "/pay?code=hello", headers=html_accept), 400)
    conforms(await call(psp, "POST", "/pay", data={"code": checkout["qr_url"]}), 303)
    conforms(await call(psp, "POST", "/pay", data={"code": "https://evil.example/Q/AB"}), 400)
    huge = {"code": "0" * 20_000}
    conforms(await call(psp, "POST", "/pay", data=huge), 413, "payload_too_large")


async def test_static_codes(psp: Psp) -> None:
    """A merchant's printed till codes, and what a scan of one does."""
    merchant = await psp.merchant()
    other = await psp.merchant("Other Shop")
    codes = "/v1/terminals/till-1/static-codes"
    body = {"label": "Counter 1", "open_amount": {"currency": "EUR", "min": 100, "max": 5000}}
    made = conforms(await call(psp, "POST", codes, json=body, headers=merchant.auth), 201)
    plain = conforms(await call(psp, "POST", codes, json={}, headers=merchant.auth), 201)
    assert plain["open_amount"] is None
    conforms(await call(psp, "POST", codes, data=b"[", headers=merchant.auth), 400, "invalid_json")
    conforms(await call(psp, "POST", codes, json=body), 401, "unauthorized")
    conforms(
        await call(psp, "POST", codes, json={"label": ""}, headers=merchant.auth),
        422,
        "invalid_label",
    )
    listed = conforms(await call(psp, "GET", codes, headers=merchant.auth), 200)
    assert [code["id"] for code in listed["static_codes"]] == [plain["id"], made["id"]]
    conforms(await call(psp, "GET", codes), 401, "unauthorized")
    malformed = "/v1/terminals/till%201/static-codes"
    conforms(await call(psp, "GET", malformed, headers=merchant.auth), 422, "invalid_terminal_id")

    json_accept = {"Accept": "application/json"}
    html_accept = {"Accept": "text/html"}
    code = made["code"]
    scan = f"/S/{code}"
    shown = conforms(await call(psp, "GET", scan, headers=json_accept), 200)
    assert shown["open_amount"] == body["open_amount"]
    conforms(await call(psp, "GET", scan, headers=html_accept), 200)
    conforms(await call(psp, "GET", "/S/AAAA", headers=json_accept), 404, "static_code_not_found")
    conforms(await call(psp, "GET", "/S/AAAA", headers=html_accept), 404)

    typed = f"{scan}/checkouts"
    created = conforms(await call(psp, "POST", typed, json={"amount": 1250}), 201)
    assert (created["source"], created["static_code_id"]) == ("static", made["id"])
    # Its checkout.created, as GET /v1/events answers it.
    events = conforms(await call(psp, "GET", "/v1/events", headers=merchant.auth), 200)
    assert [(e["type"], e["checkout"]["status"]) for e in events["events"]] == [
        ("checkout.created", "pending")
    ]
    conforms(await call(psp, "POST", typed, json={"amount": 1}), 422, "amount_out_of_range")
    conforms(await call(psp, "POST", typed, data={"amount": "0.01"}, headers=html_accept), 422)
    conforms(await call(psp, "POST", typed, data=b"{", headers=json_accept), 400, "invalid_json")
    redirected = conforms(
        await call(psp, "POST", typed, data={"amount": "12.50"}, headers=html_accept), 303
    )
    assert redirected == ""
    conforms(
        await call(psp, "POST", f"/S/{plain['code']}/checkouts", json={"amount": 500}),
        409,
        "open_amount_not_allowed",
    )
    conforms(
        await call(psp, "POST", "/S/AAAA/checkouts", json={"amount": 500}),
        404,
        "static_code_not_found",
    )
    conforms(
        await call(psp, "POST", "/S/AAAA/checkouts", data={"amount": "5"}, headers=html_accept), 404
    )
    await psp.checkout(merchant, terminal_id="till-1")
    conforms(await call(psp, "POST", typed, json={"amount": 500}), 409, "till_has_checkout")
    shown = conforms(await call(psp, "GET", scan, headers=json_accept), 200)
    assert shown["checkout"]["terminal_id"] == "till-1"

    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", "<svg")):
        sticker = f"/v1/static-codes/{made['id']}/sticker.{fmt}"
        printed = conforms(await call(psp, "GET", sticker, headers=merchant.auth), 200)
        assert magic in printed[:200]
    sticker = f"/v1/static-codes/{made['id']}/sticker.png"
    conforms(await call(psp, "GET", sticker), 401, "unauthorized")
    conforms(await call(psp, "GET", sticker, headers=other.auth), 404, "static_code_not_found")
    gone = f"/v1/static-codes/{made['id']}"
    conforms(await call(psp, "DELETE", gone, headers=other.auth), 404, "static_code_not_found")
    conforms(await call(psp, "DELETE", gone), 401, "unauthorized")
    revoked = conforms(await call(psp, "DELETE", gone, headers=merchant.auth), 200)
    assert revoked["revoked_at"] is not None
    conforms(await call(psp, "GET", scan, headers=json_accept), 410, "static_code_revoked")
    conforms(await call(psp, "GET", sticker, headers=merchant.auth), 410, "static_code_revoked")

    # An EMV merchant's code carries its static payload.
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
    conforms(await call(psp, "PATCH", "/v1/merchant", json=settings, headers=merchant.auth), 200)
    emv_code = conforms(await call(psp, "POST", codes, json=body, headers=merchant.auth), 201)
    assert emv_code["qr_payload"].startswith("000201010211")
    listed = conforms(await call(psp, "GET", codes, headers=merchant.auth), 200)
    assert listed["static_codes"][0]["qr_payload"] == emv_code["qr_payload"]
    conforms(await call(psp, "GET", scan, headers=html_accept), 410)
    conforms(await call(psp, "POST", typed, json={"amount": 500}), 410, "static_code_revoked")
    conforms(await call(psp, "POST", typed, data={"amount": "5"}, headers=html_accept), 410)


async def test_static_code_rate_limits(tmp_path: Any) -> None:
    from psp_server.runtime.config import Rate
    from tests.support.psp import start_psp, stop_psp

    tight = await start_psp(
        str(tmp_path / "tight.db"), rate_qr_per_ip=Rate(1, 60.0), rate_static_per_code=Rate(1, 60.0)
    )
    try:
        merchant = await tight.merchant()
        body = {"open_amount": {"currency": "EUR", "min": 100, "max": 5000}}
        made = conforms(
            await call(tight, "POST", "/v1/terminals/t/static-codes", json=body,
                       headers=merchant.auth), 201
        )  # fmt: skip
        scan = f"/S/{made['code']}"
        json_accept = {"Accept": "application/json"}
        conforms(await call(tight, "GET", scan, headers=json_accept), 200)
        conforms(await call(tight, "GET", scan, headers=json_accept), 429, "rate_limited")
        typed = f"{scan}/checkouts"
        conforms(await call(tight, "POST", typed, json={"amount": 100}), 201)
        conforms(await call(tight, "POST", typed, json={"amount": 100}), 429, "rate_limited")
    finally:
        await stop_psp(tight)


async def test_rate_limits_and_the_body_timeout(tmp_path: Any) -> None:
    """429 and 408 come from the abuse limits; a server with tight ones shows both."""
    from psp_server.runtime.config import Rate
    from tests.support.psp import start_psp, stop_psp

    tight = await start_psp(
        str(tmp_path / "tight.db"), rate_qr_per_ip=Rate(1, 60.0),
        rate_pay_per_token=Rate(1, 60.0), body_timeout=0.5,
    )  # fmt: skip
    try:
        merchant, wallet = await tight.merchant(), await tight.wallet()
        checkout = await tight.checkout(merchant)
        code = code_of(checkout)
        json_accept = {"Accept": "application/json"}
        conforms(await call(tight, "GET", f"/Q/{code}", headers=json_accept), 200)
        conforms(await call(tight, "GET", f"/Q/{code}", headers=json_accept), 429, "rate_limited")
        conforms(await call(tight, "POST", "/v1/payments", json={"code": code},
                            headers=wallet.auth), 201)  # fmt: skip
        conforms(await call(tight, "POST", "/v1/payments", json={"code": code},
                            headers=wallet.auth), 429, "rate_limited")  # fmt: skip
        conforms(await _slow_body(tight, other_wallet_auth=(await tight.wallet()).auth), 408,
                 "request_timeout")  # fmt: skip
    finally:
        await stop_psp(tight)


async def test_pairing(tmp_path: Any) -> None:
    """A terminal's pairing, from its start to its settings, on a PSP that
    pairs terminals (its broker folder a temporary one), and one that does not."""
    import hashlib

    from psp_server.api.appkeys import PAIRING
    from psp_server.pairing.service import PAIRING_TTL_MS
    from psp_server.runtime.config import Rate
    from scan2pay_common.mqtt_url import MqttTarget
    from tests.support.psp import start_psp, stop_psp

    folder = tmp_path / "mosquitto"
    folder.mkdir()
    psp = await start_psp(
        str(tmp_path / "pairing.db"),
        terminal_mqtt=MqttTarget.parse("mqtts://127.0.0.1:8883"),
        mosquitto_dir=folder,
        rate_pair_per_ip=Rate(4, 600.0),
    )
    secret = "s" * 43
    start = {"device_secret_hash": hashlib.sha256(secret.encode()).hexdigest()}
    try:
        started = conforms(await call(psp, "POST", "/v1/pairings", json=start), 201)
        expiring = conforms(await call(psp, "POST", "/v1/pairings", json=start), 201)
        conforms(await call(psp, "POST", "/v1/pairings", data=b"[1"), 400, "invalid_json")
        conforms(await call(psp, "POST", "/v1/pairings", json={"device_secret_hash": "x"}),
                 422, "invalid_device_secret_hash")  # fmt: skip
        conforms(await call(psp, "POST", "/v1/pairings", json=start), 429, "rate_limited")
        poll = f"/v1/pairings/{started['pairing_id']}/poll"
        mine = {"device_secret": secret}
        assert conforms(await call(psp, "POST", poll, json=mine), 200)["status"] == "pending"
        conforms(await call(psp, "POST", poll, data=b"{"), 400, "invalid_json")
        conforms(await call(psp, "POST", poll, json={"device_secret": "x"}), 422,
                 "invalid_device_secret")  # fmt: skip
        conforms(await call(psp, "POST", poll, json={"device_secret": "t" * 43}), 403,
                 "wrong_device_secret")  # fmt: skip
        conforms(await call(psp, "POST", "/v1/pairings/pair_0/poll", json=mine), 404,
                 "not_found")  # fmt: skip
        merchant = await psp.merchant()
        await psp.server.app[PAIRING].approve(started["code"], merchant.id, "lane-1")
        handed = conforms(await call(psp, "POST", poll, json=mine), 200)
        assert handed["status"] == "approved"
        assert conforms(await call(psp, "POST", poll, json=mine), 200)["status"] == "paired"
        await psp.server.app[PAIRING].unpair(merchant.id, "lane-1")
        assert conforms(await call(psp, "POST", poll, json=mine), 200) == {"status": "revoked"}
        psp.clock.advance(PAIRING_TTL_MS)
        late = f"/v1/pairings/{expiring['pairing_id']}/poll"
        conforms(await call(psp, "POST", late, json=mine), 410, "pairing_expired")
    finally:
        await stop_psp(psp)
    plain = await start_psp(str(tmp_path / "plain.db"))
    try:
        conforms(await call(plain, "POST", "/v1/pairings", json=start), 503,
                 "pairing_unavailable")  # fmt: skip
    finally:
        await stop_psp(plain)


async def _slow_body(psp: Psp, other_wallet_auth: dict[str, str]) -> Reply:
    """A payment whose body never finishes arriving."""
    from urllib.parse import urlsplit

    parts = urlsplit(psp.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        (
            "POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {other_wallet_auth['Authorization']}\r\n"
            "Content-Length: 40\r\n\r\n{"
        ).encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, separator, value = line.partition(": ")
        if separator:
            headers.add(name, value)
    return Reply("POST", "/v1/payments", status, "application/json",
                 CIMultiDictProxy(headers), _loads(body))  # fmt: skip


# Last: what the document lists, for the judge in
# tests/support/documented_responses.py, which sees every test's report
# whichever worker ran it, and fails the run for a response no test produced.


def test_every_documented_response_is_exercised(request: pytest.FixtureRequest) -> None:
    module = request.node.module
    documented = {
        (path, method, status)
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in OPERATIONS
        for status in operation["responses"]
    }
    assert documented >= SEEN, "produced but not documented"
    request.node.user_properties.append((DOCUMENTED, sorted(documented)))
    tests = sorted(name for name in dir(module) if name.startswith("test_"))
    request.node.user_properties.append((TESTS, tests))


def test_the_judge_tells_what_was_never_produced() -> None:
    judge = DocumentedResponses()
    judge.documented = {("/a", "get", "200"), ("/a", "get", "404")}
    judge.tests = {"test_one", "test_two"}
    judge.produced = {("/a", "get", "200")}
    judge.ran = {"test_one"}
    assert judge.never_produced() is None  # with -k: the rest was not asked for
    judge.ran.add("test_two")
    assert judge.never_produced() == {("/a", "get", "404")}
