"""``Idempotency-Key``: the scope a key is stored under, and the answer
stored with it (replayed byte for byte on a retry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from psp_server.api.envelope import error_body
from psp_server.api.http import dumps
from psp_server.core.errors import APIError, Refused
from psp_server.core.payloads import (
    check_idempotency_key,
)
from psp_server.core.records import (
    Answer,
    IdempotencyKey,
    Reply,
)
from scan2pay_common.errors import InvalidValue

T = TypeVar("T")

# The operations a key is scoped to: one key may serve one of each.
CREATE_CHECKOUT = "POST /v1/checkouts"
PAY = "POST /v1/payments"
REFUND = "POST /v1/checkouts/{checkout_id}/refunds"


def answer(key: IdempotencyKey | None, ok: Callable[[T], tuple[int, Any]]) -> Answer[T]:
    """How the outcome of an operation becomes its answer: ``ok`` shapes a
    success; a refusal becomes the error the middleware would have sent, so
    that a stored refusal replays exactly as it was first answered."""

    def render(outcome: T | Refused) -> Reply:
        if isinstance(outcome, Refused):
            refused = outcome.refusal
            return Reply(refused.status, error_body(refused.code, refused.message))
        status, body = ok(outcome)
        return Reply(status, dumps(body))

    return Answer(key, render)


def idempotency_key(request: web.Request) -> str | None:
    try:
        return check_idempotency_key(request.headers.getall("Idempotency-Key", []))
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def scope_of(
    key: str | None, principal: str, endpoint: str, request_hash: str
) -> IdempotencyKey | None:
    return None if key is None else IdempotencyKey(principal, endpoint, key, request_hash)
