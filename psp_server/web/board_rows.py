"""What the merchant's board shows, as the JSON its stream sends: checkouts
as rows, totals per currency, terminals. Amounts come formatted for people
(``€12.34``) as well as in minor units, so that the page formats nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psp_server.core.machine import Status, effective_status
from psp_server.core.records import Checkout, StatusTotal
from scan2pay_common.money import format_display
from scan2pay_common.static_codes import short_id
from scan2pay_common.timefmt import to_rfc3339


def row(checkout: Checkout, now: int) -> dict[str, Any]:
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    return {
        "id": checkout.id,
        "order_id": checkout.order_id,
        "terminal_id": checkout.terminal_id,
        "amount": checkout.amount,
        "amount_text": format_display(checkout.amount, checkout.currency),
        "currency": checkout.currency,
        "status": status.value,
        "refunded_amount": checkout.refunded_amount,
        "refunded_text": format_display(checkout.refunded_amount, checkout.currency),
        "created_at": to_rfc3339(checkout.created_at),
        "expires_at": to_rfc3339(checkout.expires_at),
        # How it came in: "static" for an amount a customer typed at a
        # printed till code, whose short id the board shows beside the till.
        "source": "dynamic" if checkout.static_code_id is None else "static",
        "static_short_id": None
        if checkout.static_code_id is None
        else short_id(checkout.static_code_id),
    }


def state(checkout: Checkout, now: int) -> tuple[str, int]:
    """What a row shows that can change: a row is sent again when this does."""
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    return status.value, checkout.refunded_amount


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "text": format_display(amount, currency)}


def _part(count: int, amount: int, currency: str) -> dict[str, Any]:
    return {"count": count, **_money(amount, currency)}


def totals(found: Iterable[StatusTotal]) -> list[dict[str, Any]]:
    """One entry per currency, in the order of their codes; paid money is
    net of what was refunded, and the refunds are given beside it."""
    by_currency: dict[str, dict[str, Any]] = {}
    for total in found:
        currency = total.currency
        entry = by_currency.setdefault(
            currency,
            {
                "currency": currency,
                **{status.value: _part(0, 0, currency) for status in Status},
                "refunded": _money(0, currency),
            },
        )
        if total.status is Status.PAID:
            entry["paid"] = _part(total.count, total.amount - total.refunded, currency)
            entry["refunded"] = _money(total.refunded, currency)
        else:
            entry[total.status.value] = _part(total.count, total.amount, currency)
    return [by_currency[currency] for currency in sorted(by_currency)]
