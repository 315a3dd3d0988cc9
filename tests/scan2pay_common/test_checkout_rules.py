"""The checkout rules both the PSP and the cashier bridge apply
(scan2pay_common/checkout_rules.py): one statement, the same verdict on
each side."""

from __future__ import annotations

from typing import Any

import pytest

from cashier_bridge.model import CheckoutOrder
from cashier_bridge.orders import InvalidOrder, check_order
from psp_server.core.payloads import CheckoutRequest
from scan2pay_common.checkout_rules import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    check_checkout,
    checkout_problems,
)
from scan2pay_common.errors import InvalidValue

GOOD: dict[str, Any] = {"order_id": "A-1", "amount": 1234, "currency": "EUR"}

BREACHES: list[tuple[dict[str, Any], str]] = [
    ({"order_id": "A 1"}, "invalid_order_id"),
    ({"amount": 0}, "invalid_amount"),
    ({"amount": True}, "invalid_amount"),
    ({"currency": "XAU"}, "invalid_currency"),
    ({"terminal_id": "lane/1"}, "invalid_terminal_id"),
    ({"expires_in": 0}, "invalid_expires_in"),
    ({"expires_in": MAX_EXPIRES_IN + 1}, "invalid_expires_in"),
    ({"expires_in": 1.0}, "invalid_expires_in"),
    ({"description": "x" * 201}, "invalid_description"),
    ({"description": "a\u202eb"}, "invalid_description"),
]


@pytest.mark.parametrize(("change", "code"), BREACHES)
def test_the_psp_and_the_bridge_refuse_the_same_field_with_the_same_words(
    change: dict[str, Any], code: str
) -> None:
    body = {**GOOD, "terminal_id": "lane-1", **change}
    with pytest.raises(InvalidValue) as at_psp:
        CheckoutRequest.parse(body, max_amount=10**9)
    with pytest.raises(InvalidOrder) as at_bridge:
        check_order(CheckoutOrder(**body))
    (problem,) = at_bridge.value.problems
    assert at_psp.value.code == problem.code == code
    assert at_psp.value.message == problem.message
    (field,) = change
    assert problem.field == field


def test_the_first_problem_is_the_psps_and_every_problem_is_told() -> None:
    values = {**GOOD, "order_id": "A 1", "amount": -1, "expires_in": 0}
    with pytest.raises(InvalidValue) as caught:
        check_checkout(values)
    assert caught.value.code == "invalid_expires_in"  # checked first, as it always was
    fields = [field for field, _ in checkout_problems(values)]
    assert fields == ["expires_in", "order_id", "amount"]


def test_defaults_and_nulls() -> None:
    fields = check_checkout(GOOD)
    assert fields.expires_in == DEFAULT_EXPIRES_IN
    assert (fields.terminal_id, fields.description) == (None, None)
    assert check_checkout({**GOOD, "description": None}).description is None
    with pytest.raises(InvalidValue, match="expires_in must be an integer"):
        check_checkout({**GOOD, "expires_in": None})  # absent is the default, null is not


def test_the_psps_ceiling_on_amounts() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_checkout({**GOOD, "amount": 1001}, max_amount=1000)
    assert caught.value.code == "amount_too_large"
    assert checkout_problems({"amount": 1001}) == []
