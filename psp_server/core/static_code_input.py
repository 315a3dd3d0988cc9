"""A printed till code's request as a person types it, on the board's form
or ``psp-server static-code create``: a label, and a currency with the
least and most amount in major units (``"1.00"``), checked by the same
rules as the API's JSON body (``static_codes.StaticCodeRequest``)."""

from __future__ import annotations

from psp_server.core.static_codes import StaticCodeRequest
from scan2pay_common.money import check_currency, parse_major


def request_in_major_units(
    *,
    label: str | None,
    currency: str | None,
    least: object,
    most: object,
    max_amount: int,
) -> StaticCodeRequest:
    """No currency: a code for the cashier's checkouts only. With one, the
    amounts customers may type, ``least`` to ``most``. Raises ``InvalidValue``."""
    body: dict[str, object] = {}
    if label is not None:
        body["label"] = label
    if currency:
        check_currency(currency)
        body["open_amount"] = {
            "currency": currency,
            "min": parse_major(least, currency),
            "max": parse_major(most, currency),
        }
    return StaticCodeRequest.parse(body, max_amount=max_amount)
