"""``POST /v1/checkouts/{id}/refunds``: money back to the wallet that paid."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from psp_server.api.appkeys import CLOCK, IN_FLIGHT, METRICS, RELAY_WAKE, SETTINGS, STORAGE
from psp_server.api.http import checkout_id_of, json_body, merchant_of, send, storage_call
from psp_server.api.idempotency import REFUND, answer, idempotency_key, scope_of
from psp_server.core.errors import APIError
from psp_server.core.payloads import (
    RefundRequest,
)
from psp_server.core.records import (
    Checkout,
    Refund,
)
from scan2pay_common.errors import InvalidValue
from scan2pay_common.timefmt import to_rfc3339


async def refund(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    key = idempotency_key(request)
    checkout_id = checkout_id_of(request)
    try:
        parsed = RefundRequest.parse(
            await json_body(request), max_amount=request.app[SETTINGS].max_amount
        )
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = scope_of(key, merchant.id, REFUND, parsed.fingerprint(checkout_id))
    with request.app[IN_FLIGHT].hold(scoped):
        now = request.app[CLOCK].now_ms()
        reply = await storage_call(
            request.app[STORAGE].refund_reply(
                answer(scoped, _refund_json), merchant.id, checkout_id, parsed.amount, now=now
            )
        )
    request.app[RELAY_WAKE].set()
    if reply.status == 201 and not reply.replayed:
        request.app[METRICS].transition("refunded")
    return send(reply)


def _refund_json(result: tuple[Refund, Checkout]) -> tuple[int, Any]:
    made, _ = result
    return 201, {
        "id": made.id,
        "checkout_id": made.checkout_id,
        "amount": made.amount,
        "currency": made.currency,
        "created_at": to_rfc3339(made.created_at),
    }
