"""The HTTP API's handlers. They parse, authenticate, call storage and shape
the answer; the rules live in ``checkout_machine``, the SQL in ``storage``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id
from scan2pay_common.timefmt import now_ms, to_rfc3339

from . import qr_page
from .appkeys import RELAY, RELAY_WAKE, SETTINGS, STORAGE
from .checkout_machine import effective_status
from .errors import APIError, Refused, refusal
from .payloads import CheckoutRequest, PaymentRequest, check_code
from .storage.records import Checkout, Merchant

_OPENAPI = (resources.files("psp_server") / "openapi.json").read_bytes()


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type="application/json",
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError("unauthorized", "send Authorization: Bearer <key>")
    return token.strip()


async def _merchant(request: web.Request) -> Merchant:
    merchant = await request.app[STORAGE].merchant_by_key(_bearer(request))
    if merchant is None:
        raise APIError("unauthorized", "unknown or revoked merchant key")
    return merchant


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        return jsonfields.load_object(raw)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def _checkout_json(checkout: Checkout) -> dict[str, Any]:
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now_ms())
    return checkout.snapshot(status).to_dict()


def _checkout_id(request: web.Request) -> str:
    try:
        return check_checkout_id(request.match_info["checkout_id"])
    except InvalidValue:
        raise refusal("not_found") from None


async def healthz(request: web.Request) -> web.Response:
    relay = request.app.get(RELAY)
    mqtt = "disabled" if relay is None else ("connected" if relay.connected else "disconnected")
    return _json({"status": "ok", "mqtt": mqtt, "time": to_rfc3339(now_ms())})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_OPENAPI, content_type="application/json")


async def get_merchant(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    return _json({"id": merchant.id, "name": merchant.name})


async def create_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    body = await _body(request)
    settings = request.app[SETTINGS]
    try:
        parsed = CheckoutRequest.parse(body, max_amount=settings.max_amount)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    try:
        checkout, created = await request.app[STORAGE].create_checkout(
            merchant.id, parsed, public_url=settings.require_public_url(), now=now_ms()
        )
    except Refused as exc:
        raise refusal(exc.code) from None
    return _json(_checkout_json(checkout), status=201 if created else 200)


async def get_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    checkout = await request.app[STORAGE].get_checkout(merchant.id, _checkout_id(request))
    if checkout is None:
        raise refusal("not_found")
    return _json(_checkout_json(checkout))


async def cancel_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    checkout_id = _checkout_id(request)
    try:
        checkout = await request.app[STORAGE].cancel_checkout(
            merchant.id, checkout_id, now=now_ms()
        )
    except Refused as exc:
        request.app[RELAY_WAKE].set()  # a refusal may have recorded an expiry
        raise refusal(exc.code) from None
    request.app[RELAY_WAKE].set()
    return _json(_checkout_json(checkout))


async def lookup_code(request: web.Request) -> web.Response:
    wants_html = _prefers_html(request)
    try:
        code = check_code(request.match_info["code"])
        found = await request.app[STORAGE].lookup_code(code)
    except InvalidValue:
        found = None
    if found is None:
        if wants_html:
            return web.Response(status=404, text=qr_page.render_unknown(), content_type="text/html")
        raise refusal("unknown_code")
    checkout, merchant = found
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now_ms())
    expires_at = to_rfc3339(checkout.expires_at)
    if wants_html:
        page = qr_page.render(
            merchant=merchant.name,
            amount=checkout.amount,
            currency=checkout.currency,
            status=status.value,
            expires_at=expires_at,
        )
        return web.Response(text=page, content_type="text/html")
    return _json(
        {
            "checkout_id": checkout.id,
            "merchant": {"name": merchant.name},
            "amount": checkout.amount,
            "currency": checkout.currency,
            "status": status.value,
            "expires_at": expires_at,
        }
    )


def _prefers_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept:
        return False
    return "text/html" in accept


async def pay(request: web.Request) -> web.Response:
    token = _bearer(request)
    try:
        parsed = PaymentRequest.parse(await _body(request))
    except (APIError, InvalidValue, web.HTTPRequestEntityTooLarge) as exc:
        # Who is asking comes before what is wrong with the body, as on the
        # merchant endpoints; the happy path pays in one round trip.
        if await request.app[STORAGE].wallet_by_token(token) is None:
            raise APIError("unauthorized", "unknown or revoked wallet token") from None
        if isinstance(exc, InvalidValue):
            raise APIError.from_invalid(exc) from None
        raise
    try:
        payment, _ = await request.app[STORAGE].pay(token, parsed.code, now=now_ms())
    except Refused as exc:
        if exc.code == "unauthorized":
            raise APIError("unauthorized", "unknown or revoked wallet token") from None
        request.app[RELAY_WAKE].set()  # a refusal may have recorded an expiry
        raise refusal(exc.code) from None
    request.app[RELAY_WAKE].set()
    return _json(
        {
            "id": payment.id,
            "checkout_id": payment.checkout_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": "succeeded",
            "paid_at": to_rfc3339(payment.created_at),
        },
        status=201,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/v1/merchant", get_merchant)
    app.router.add_post("/v1/checkouts", create_checkout)
    app.router.add_get("/v1/checkouts/{checkout_id}", get_checkout)
    app.router.add_post("/v1/checkouts/{checkout_id}/cancel", cancel_checkout)
    app.router.add_post("/v1/payments", pay)
    app.router.add_get("/Q/{code}", lookup_code)
