"""A new order as the checkout it becomes: the rule of what a checkout is
when it is made (pending, its one-time code and QR URL drawn, expiring
``expires_in`` seconds from now), before any backend stores it."""

from __future__ import annotations

from psp_server.core import credentials
from psp_server.core.machine import Status
from psp_server.core.payloads import CheckoutRequest
from psp_server.core.records import Checkout


def new_checkout(
    merchant_id: str, request: CheckoutRequest, *, public_url: str, now: int
) -> Checkout:
    """The checkout a new order becomes; its id and one-time code are drawn
    here, so that a retry of the same request can be told from the first."""
    code = credentials.new_code()
    return Checkout(
        id=credentials.new_id("co"),
        merchant_id=merchant_id,
        order_id=request.order_id,
        amount=request.amount,
        currency=request.currency,
        description=request.description,
        terminal_id=request.terminal_id,
        code=code,
        qr_url=f"{public_url.rstrip('/')}/Q/{code}",
        status=Status.PENDING,
        created_at=now,
        expires_at=now + request.expires_in * 1000,
        updated_at=now,
    )
