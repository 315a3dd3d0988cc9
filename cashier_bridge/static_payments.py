"""Payments customers made at a till's printed code (docs/static-qr.md):
the cashier rang nothing up, so no flow of the bridge waits for them, and
the PSP's signed ``checkout.paid`` event marked ``"source": "static"`` is
how the bridge hears of them. ``cashier-bridge watch`` prints them; the
local API streams them per till (``GET /tills/{terminal_id}/events``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.money import format_display
from scan2pay_common.static_codes import short_id


@dataclass(frozen=True, slots=True)
class StaticPayment:
    checkout_id: str
    terminal_id: str | None
    amount: int
    currency: str
    static_code_id: str
    short_id: str
    paid_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "checkout_id": self.checkout_id,
            "terminal_id": self.terminal_id,
            "amount": self.amount,
            "currency": self.currency,
            "source": "static",
            "static_code_id": self.static_code_id,
            "short_id": self.short_id,
            "paid_at": self.paid_at,
        }

    def message(self) -> str:
        shown = format_display(self.amount, self.currency)
        return (
            f"paid at till {self.terminal_id} through its printed code {self.short_id}:"
            f" {shown} (checkout {self.checkout_id})"
        )


def static_payment_of(event: CheckoutEvent) -> StaticPayment | None:
    """The payment an event announces, if it is a checkout typed in at a
    printed till code that was just paid; None for anything else."""
    checkout = event.checkout
    if event.type != "checkout.paid" or checkout.static_code_id is None:
        return None
    return StaticPayment(
        checkout_id=checkout.id,
        terminal_id=checkout.terminal_id,
        amount=checkout.amount,
        currency=checkout.currency,
        static_code_id=checkout.static_code_id,
        short_id=short_id(checkout.static_code_id),
        paid_at=event.created_at,
    )
