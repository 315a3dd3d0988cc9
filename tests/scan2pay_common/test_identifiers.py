"""scan2pay_common.identifiers: ids that can never break a topic or a log line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import (
    ORDER_ID_MAX,
    check_checkout_id,
    check_merchant_id,
    check_order_id,
    check_terminal_id,
)

CHECKERS: list[tuple[Callable[[object], str], str, str]] = [
    (check_order_id, "order_id", "invalid_order_id"),
    (check_terminal_id, "terminal_id", "invalid_terminal_id"),
    (check_merchant_id, "merchant_id", "invalid_merchant_id"),
    (check_checkout_id, "checkout_id", "invalid_checkout_id"),
]

GOOD = [
    "a",
    "A",
    "0",
    "order-42",
    "ORD_2025.11.24",
    "mer_0123456789abcdef0123",
    "co_ab12",
    "...",
    "-",
    "_",
    "a.b_c-D9",
]

BAD = [
    "a/b",
    "/",
    "a+b",
    "+",
    "a#b",
    "#",
    "a b",
    " a",
    "a ",
    "a\tb",
    "a\nb",
    "a\n",
    "a\x00b",
    "café",
    "ü",
    "Ω",
    "\u2170",
    "\u0661",
    "\uff41",
    "a:b",
    "a@b",
    "a%2Fb",
    "a,b",
    "a;b",
    "a*b",
    "a$b",
    "a'b",
    'a"b',
    "a\\b",
    "a?b",
    "a=b",
    "a&b",
    "a~b",
    "a|b",
    "😀",
]

NOT_STRINGS: list[object] = [None, 42, 4.2, True, b"order", ["order"], {"id": "order"}]


def test_order_id_max_is_64() -> None:
    assert ORDER_ID_MAX == 64


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
@pytest.mark.parametrize("value", GOOD)
def test_safe_ids_are_returned_unchanged(
    check: Callable[[object], str], field: str, code: str, value: str
) -> None:
    assert check(value) == value


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
def test_64_characters_are_accepted(check: Callable[[object], str], field: str, code: str) -> None:
    value = "a" * 63 + "Z"
    assert len(value) == 64
    assert check(value) == value


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
def test_65_characters_are_rejected(check: Callable[[object], str], field: str, code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check("a" * 65)
    assert caught.value.code == code
    assert caught.value.field == field


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
def test_empty_is_rejected(check: Callable[[object], str], field: str, code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check("")
    assert caught.value.code == code
    assert caught.value.field == field


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
@pytest.mark.parametrize("value", BAD)
def test_unsafe_characters_are_rejected(
    check: Callable[[object], str], field: str, code: str, value: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        check(value)
    assert caught.value.code == code
    assert caught.value.field == field


@pytest.mark.parametrize(("check", "field", "code"), CHECKERS)
@pytest.mark.parametrize("value", NOT_STRINGS)
def test_non_strings_are_rejected(
    check: Callable[[object], str], field: str, code: str, value: object
) -> None:
    with pytest.raises(InvalidValue) as caught:
        check(value)
    assert caught.value.code == code
    assert caught.value.field == field


def test_invalid_value_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="order_id"):
        check_order_id("a/b")
