"""Checkouts as the checkout rules read them, made without a database."""

from __future__ import annotations

from psp_server.core.machine import Status
from psp_server.core.records import Checkout

MERCHANT = "mer_shop"


def facts(
    status: Status = Status.PENDING,
    *,
    amount: int = 1234,
    currency: str = "EUR",
    expires_at: int = 10_000,
    refunded_amount: int = 0,
) -> Checkout:
    """A checkout row as the storage would read it: the record the rules
    are given in production, so that mypy checks it has what they read."""
    return Checkout(
        id="co_1",
        merchant_id=MERCHANT,
        order_id="A-1",
        amount=amount,
        currency=currency,
        description=None,
        terminal_id=None,
        code="C" * 32,
        qr_url="HTTP://PSP/Q/" + "C" * 32,
        status=status,
        created_at=0,
        expires_at=expires_at,
        updated_at=0,
        refunded_amount=refunded_amount,
    )
