"""What a wallet does: look a code up (``GET /Q/{code}``) and pay it
(``POST /v1/payments``), authenticated before anything is written."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from psp_server.api.appkeys import CLOCK, IN_FLIGHT, METRICS, RELAY_WAKE, STORAGE
from psp_server.api.http import (
    bearer,
    html_page_response,
    json_body,
    json_response,
    send,
    storage_call,
)
from psp_server.api.idempotency import PAY, answer, idempotency_key, scope_of
from psp_server.core.errors import APIError, Refusal, StorageUnavailable
from psp_server.core.machine import effective_status
from psp_server.core.payloads import (
    PaymentRequest,
    check_code,
)
from psp_server.core.qr import qr_payload
from psp_server.core.records import (
    Checkout,
    Payment,
)
from psp_server.web import qr_page
from scan2pay_common.errors import InvalidValue
from scan2pay_common.statuses import Status
from scan2pay_common.timefmt import to_rfc3339

# Never a code: "0" is not in the base32 alphabet codes are written in.
_NO_SUCH_CODE = "0" * 32


async def lookup_code(request: web.Request) -> web.Response:
    wants_html = _prefers_html(request)
    try:
        code = check_code(request.match_info["code"])
    except InvalidValue:
        # A malformed code costs the same lookup as an unknown one, so that
        # the time of the answer tells nothing about the code.
        code = _NO_SUCH_CODE
    found = await request.app[STORAGE].lookup_code(code)
    if found is None:
        if wants_html:
            return web.Response(status=404, text=qr_page.render_unknown(), content_type="text/html")
        raise Refusal.UNKNOWN_CODE.error()
    checkout, merchant = found
    now = request.app[CLOCK].now_ms()
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    expires_at = to_rfc3339(checkout.expires_at)
    if wants_html:
        page = qr_page.render(
            merchant=merchant.name,
            amount=checkout.amount,
            currency=checkout.currency,
            status=status.value,
            code=code,
            expires_at=expires_at,
            expires_at_ms=checkout.expires_at,
            now_ms=now,
            qr_payload=qr_payload(checkout, merchant),
        )
        return html_page_response(page)
    return json_response(
        {
            "checkout_id": checkout.id,
            # The id too: a terminal believes an answer about the QR on its
            # screen only if it names the terminal's own merchant.
            "merchant": {"id": merchant.id, "name": merchant.name},
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
    """Counted by outcome, and timed from here to the commit when it succeeded."""
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await _pay(request)
    except StorageUnavailable:
        outcome = "unavailable"
        raise
    except APIError:
        outcome = "refused"
        raise
    else:
        if response.status == 201:
            outcome = "replayed" if "Idempotent-Replayed" in response.headers else "succeeded"
            if outcome == "succeeded":
                request.app[METRICS].transition(Status.PAID)
        else:
            outcome = "refused" if response.status < 500 else "error"
        return response
    finally:
        request.app[METRICS].payment(outcome, time.perf_counter() - started)


async def _pay(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    # Who is asking comes first, as on the merchant endpoints: a stranger
    # hears 401, not what else is wrong. It is a read, outside the write: a
    # bad token never joins a commit group (where a job that raises rolls
    # back and replays the whole group), and the write is handed only a
    # wallet that was found.
    wallet_id = await _wallet_id(request, bearer(request))
    key = idempotency_key(request)
    try:
        parsed = PaymentRequest.parse(await json_body(request))
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = scope_of(key, wallet_id, PAY, parsed.fingerprint())
    try:
        with request.app[IN_FLIGHT].hold(scoped):
            now = request.app[CLOCK].now_ms()
            reply = await storage_call(
                storage.pay_reply(answer(scoped, payment_json), wallet_id, parsed.code, now=now)
            )
    finally:
        request.app[RELAY_WAKE].set()  # a payment, or a refusal that recorded an expiry
    return send(reply)


async def _wallet_id(request: web.Request, token: str) -> str:
    wallet_id = await request.app[STORAGE].wallet_id_by_token(token)
    if wallet_id is None:
        raise APIError("unauthorized", "unknown or revoked wallet token")
    return wallet_id


def payment_json(result: tuple[Payment, Checkout]) -> tuple[int, Any]:
    payment, _ = result
    return 201, {
        "id": payment.id,
        "checkout_id": payment.checkout_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": "succeeded",
        "paid_at": to_rfc3339(payment.created_at),
    }
