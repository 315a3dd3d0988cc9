"""What every handler of the API shares: JSON answers, the request's
body, bearer credential and merchant, and the checkout as JSON."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from psp_server.api.appkeys import STORAGE
from psp_server.api.auth import bearer_token
from psp_server.core.errors import APIError, Refusal, Refused
from psp_server.core.machine import effective_status
from psp_server.core.qr import qr_payload
from psp_server.core.records import (
    Checkout,
    Merchant,
    Reply,
)
from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id


def dumps(body: Any) -> bytes:
    return jsonfields.dumps_unordered(body)


JSON_TYPE = {"Content-Type": "application/json"}
# The QR page's status changes; a browser going back must ask again.
NO_STORE = {"Cache-Control": "no-store"}
REPLAYED = {**JSON_TYPE, "Idempotent-Replayed": "true"}


def json_response(body: Any, status: int = 200) -> web.Response:
    # Headers given whole: aiohttp's content_type argument parses the type
    # again on every answer.
    return web.Response(status=status, body=dumps(body), headers=JSON_TYPE)


def html_page_response(text: str, status: int = 200) -> web.Response:
    """A page whose content changes (a checkout's status, a code's
    destination): never kept by the browser (``NO_STORE``)."""
    return web.Response(text=text, status=status, content_type="text/html", headers=NO_STORE)


def send(reply: Reply) -> web.Response:
    headers = REPLAYED if reply.replayed else JSON_TYPE
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def bearer(request: web.Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise APIError("unauthorized", "send Authorization: Bearer <key>")
    return token


async def merchant_of(request: web.Request) -> Merchant:
    merchant = await request.app[STORAGE].merchant_by_key(bearer(request))
    if merchant is None:
        raise APIError("unauthorized", "unknown or revoked merchant key")
    return merchant


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        return jsonfields.load_object(raw)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def checkout_json(checkout: Checkout, now: int, merchant: Merchant) -> dict[str, Any]:
    """The checkout as the API answers it; with ``qr_payload``, the exact
    string to encode, when its merchant's QR codes are EMV payloads."""
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    body = checkout.snapshot(status).to_dict()
    payload = qr_payload(checkout, merchant)
    if payload is not None:
        body["qr_payload"] = payload
    return body


def checkout_id_of(request: web.Request) -> str:
    try:
        return check_checkout_id(request.match_info["checkout_id"])
    except InvalidValue:
        raise Refusal.NOT_FOUND.error() from None


async def storage_call(call: Awaitable[Reply]) -> Reply:
    """Awaits a ``*_reply`` storage call; the refusals it raises itself
    (a key reused for another request) are answered, never stored."""
    try:
        return await call
    except Refused as exc:
        raise exc.refusal.error() from None
