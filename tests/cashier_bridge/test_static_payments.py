"""Which events are payments at a till's printed code, as the bridge tells
them, called directly."""

from __future__ import annotations

from cashier_bridge.static_payments import StaticPayment, static_payment_of
from scan2pay_common.messages import STATUS_FOR_EVENT, CheckoutEvent, CheckoutSnapshot, EventType

STICKER = "sc_019ab52e4f1c9f8e7d6c5b4a3928"


def event(kind: EventType = "checkout.paid", *, static: bool = True) -> CheckoutEvent:
    checkout = CheckoutSnapshot(
        id="co_1",
        order_id="static-co_1",
        amount=1250,
        currency="EUR",
        status=STATUS_FOR_EVENT[kind],
        qr_url="HTTP://PSP/Q/" + "A" * 32,
        expires_at="2026-01-01T00:05:00.000Z",
        terminal_id="lane-1",
        created_at="2026-01-01T00:00:00.000Z",
        source="static" if static else "dynamic",
        static_code_id=STICKER if static else None,
    )
    return CheckoutEvent(
        event_id="evt_1",
        seq=1,
        type=kind,
        merchant_id="mer_1",
        checkout=checkout,
        created_at="2026-01-01T00:01:00.000Z",
    )


def test_a_paid_static_checkout_is_a_static_payment() -> None:
    payment = static_payment_of(event())
    assert payment == StaticPayment(
        "co_1", "lane-1", 1250, "EUR", STICKER, "4A3928", "2026-01-01T00:01:00.000Z"
    )
    assert payment.to_json()["source"] == "static"
    assert payment.message() == (
        "paid at till lane-1 through its printed code 4A3928: €12.50 (checkout co_1)"
    )


def test_anything_else_is_not() -> None:
    assert static_payment_of(event(static=False)) is None
    assert static_payment_of(event("checkout.expired")) is None
