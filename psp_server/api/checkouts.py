"""``/v1/checkouts``: create, read and cancel a checkout, and the signed
display ticket a new checkout carries."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from psp_server.api.appkeys import (
    BOARD_HUB,
    CLOCK,
    IN_FLIGHT,
    METRICS,
    RELAY_WAKE,
    SETTINGS,
    STORAGE,
)
from psp_server.api.guards.request_context import public_url_of
from psp_server.api.http import (
    checkout_id_of,
    checkout_json,
    json_body,
    json_response,
    merchant_of,
    send,
    storage_call,
)
from psp_server.api.idempotency import CREATE_CHECKOUT, answer, idempotency_key, scope_of
from psp_server.core.errors import APIError, Refusal, Refused
from psp_server.core.orders import new_checkout
from psp_server.core.payloads import (
    CheckoutRequest,
)
from psp_server.core.qr import qr_payload
from psp_server.core.records import (
    Checkout,
)
from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import DisplayTicket
from scan2pay_common.signing import SigningKey
from scan2pay_common.statuses import Status
from scan2pay_common.timefmt import to_rfc3339


async def create_checkout(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    key = idempotency_key(request)
    body = await json_body(request)
    settings = request.app[SETTINGS]
    try:
        parsed = CheckoutRequest.parse(body, max_amount=settings.max_amount)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = scope_of(key, merchant.id, CREATE_CHECKOUT, parsed.fingerprint())
    now = request.app[CLOCK].now_ms()
    storage = request.app[STORAGE]
    signing_key = storage.signing_key
    public_url = public_url_of(request)
    fresh = new_checkout(merchant.id, parsed, public_url=public_url, now=now)
    # Signed here, while the previous group's commit is on its way to disk,
    # rather than in the group's transaction, which holds up the next group.
    try:
        fresh_payload = qr_payload(fresh, merchant)
    except InvalidValue as exc:  # an amount longer than an EMV payload holds
        raise APIError.from_invalid(exc) from None
    fresh_ticket = display_ticket(fresh, signing_key, fresh_payload)

    def ok(result: tuple[Checkout, bool]) -> tuple[int, Any]:
        checkout, created = result
        body = checkout_json(checkout, now, merchant)
        body["display_ticket"] = (
            fresh_ticket
            if checkout == fresh
            else display_ticket(checkout, signing_key, body.get("qr_payload"))
        )
        return (201 if created else 200), body

    with request.app[IN_FLIGHT].hold(scoped):
        reply = await storage_call(
            storage.create_checkout_reply(
                answer(scoped, ok),
                merchant.id,
                parsed,
                public_url=public_url,
                now=now,
                fresh=fresh,
            )
        )
    if reply.status == 201:
        request.app[BOARD_HUB].created(merchant.id)  # a dict lookup when no board is open
        request.app[METRICS].checkout_created()
    return send(reply)


async def get_checkout(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    checkout = await request.app[STORAGE].get_checkout(merchant.id, checkout_id_of(request))
    if checkout is None:
        raise Refusal.NOT_FOUND.error()
    return json_response(checkout_json(checkout, request.app[CLOCK].now_ms(), merchant))


async def cancel_checkout(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    checkout_id = checkout_id_of(request)
    try:
        checkout = await request.app[STORAGE].cancel_checkout(
            merchant.id, checkout_id, now=request.app[CLOCK].now_ms()
        )
    except Refused as exc:
        request.app[RELAY_WAKE].set()  # a refusal may have recorded an expiry
        raise exc.refusal.error() from None
    request.app[RELAY_WAKE].set()
    request.app[METRICS].transition(Status.CANCELLED)
    return json_response(checkout_json(checkout, request.app[CLOCK].now_ms(), merchant))


def display_ticket(checkout: Checkout, key: SigningKey, payload: str | None) -> dict[str, Any]:
    """The PSP's signed word that this checkout's QR may be shown on its
    merchant's terminal until it expires (docs/signing.md), and with an EMV
    merchant, which exact payload. Ed25519 is deterministic: the same
    checkout and key give the same bytes, so a retry's ticket is the first
    one."""
    ticket = DisplayTicket(
        checkout_id=checkout.id,
        merchant_id=checkout.merchant_id,
        qr_url=checkout.qr_url,
        amount=checkout.amount,
        currency=checkout.currency,
        terminal_id=checkout.terminal_id,
        expires_at=to_rfc3339(checkout.expires_at),
        qr_payload=payload,
    )
    return key.sign(ticket.to_dict())
