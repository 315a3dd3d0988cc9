"""scan2pay_common.money: ISO 4217 exponents, exact parsing, amount checks."""

from __future__ import annotations

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import (
    EXPONENTS,
    check_currency,
    check_minor_amount,
    exponent,
    format_major,
    parse_major,
)

# Currencies and exponents.


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("CHF", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
    ],
)
def test_exponent_follows_iso_4217(currency: str, expected: int) -> None:
    assert exponent(currency) == expected
    assert EXPONENTS[currency] == expected


@pytest.mark.parametrize("code", ["XAU", "XAG", "XXX", "XDR", "XTS"])
def test_codes_without_a_minor_unit_are_not_money(code: str) -> None:
    assert code not in EXPONENTS
    with pytest.raises(InvalidValue) as caught:
        check_currency(code)
    assert caught.value.code == "invalid_currency"


@pytest.mark.parametrize("code", ["EUR", "JPY", "KWD"])
def test_check_currency_returns_a_valid_code(code: str) -> None:
    assert check_currency(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "eur",
        "Eur",
        "EURO",
        "EU",
        "",
        "ZZZ",
        "QQQ",
        " EUR",
        "EUR ",
        "EUR\n",
        "E1R",
        "\u0415UR",
        None,
        978,
        b"EUR",
        ["EUR"],
    ],
)
def test_bad_currency_is_invalid_currency(code: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_currency(code)
    assert caught.value.code == "invalid_currency"


def test_exponent_of_bad_currency_is_invalid_currency() -> None:
    with pytest.raises(InvalidValue) as caught:
        exponent("eur")
    assert caught.value.code == "invalid_currency"


# check_minor_amount.


@pytest.mark.parametrize("amount", [1, 1234, 100_000_000, 10**30])
def test_positive_integers_are_amounts(amount: int) -> None:
    assert check_minor_amount(amount) == amount


def test_amount_at_maximum_is_accepted() -> None:
    assert check_minor_amount(100, maximum=100) == 100


def test_amount_above_maximum_is_amount_too_large() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_minor_amount(101, maximum=100)
    assert caught.value.code == "amount_too_large"


@pytest.mark.parametrize(
    "amount", [True, False, 12.0, 12.5, 0, -1, -1234, "12", "1234", None, [12], 0.0]
)
def test_non_amounts_are_invalid_amount(amount: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_minor_amount(amount, maximum=1000)
    assert caught.value.code == "invalid_amount"


# parse_major: exact, never rounded.


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("12.34", "EUR", 1234),
        ("12", "EUR", 1200),
        ("12.3", "EUR", 1230),
        ("0.01", "EUR", 1),
        ("12.340", "EUR", 1234),  # a trailing zero loses nothing
        ("1200", "JPY", 1200),
        ("1", "JPY", 1),
        ("1.5", "KWD", 1500),
        ("1.005", "KWD", 1005),
        ("0.001", "KWD", 1),
        ("007", "JPY", 7),
        (" 12.34 ", "EUR", 1234),
        ("999999999999.99", "EUR", 99999999999999),
    ],
)
def test_parse_major(text: str, currency: str, expected: int) -> None:
    assert parse_major(text, currency) == expected


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "EUR"), ("0.001", "EUR"), ("1.5", "JPY"), ("1200.0001", "JPY"), ("1.0005", "KWD")],
)
def test_more_decimals_than_the_currency_has_is_rejected(text: str, currency: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_major(text, currency)
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    "text",
    [
        # 29 significant digits: beyond decimal's default 28-digit context.
        "1.0000000000000000000000000001",
        "12345678901234567890123456.785",
    ],
)
def test_long_amounts_are_not_rounded_either(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_major(text, "EUR")
    assert caught.value.code == "invalid_amount"


def test_long_whole_amounts_are_exact() -> None:
    assert parse_major("12345678901234567890123456789", "EUR") == 1234567890123456789012345678900


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-12.34",
        "-1",
        "+12.34",
        "12,34",
        "1,234.56",
        "12.",
        ".5",
        "1e3",
        "1E3",
        "12.34.56",
        "abc",
        "12abc",
        "NaN",
        "Infinity",
        "1_000",
        "0x10",
        "\u0661\u0662",
        "12 34",
        "€12",
    ],
)
def test_garbage_is_invalid_amount(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_major(text, "EUR")
    assert caught.value.code == "invalid_amount"


def test_parse_major_with_bad_currency_is_invalid_currency() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_major("12.34", "XAU")
    assert caught.value.code == "invalid_currency"


# format_major.


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1234, "EUR", "12.34"),
        (1, "EUR", "0.01"),
        (100, "EUR", "1.00"),
        (0, "EUR", "0.00"),
        (-5, "EUR", "-0.05"),
        (-1234, "EUR", "-12.34"),
        (1200, "JPY", "1200"),
        (0, "JPY", "0"),
        (1500, "KWD", "1.500"),
        (1, "KWD", "0.001"),
    ],
)
def test_format_major(amount: int, currency: str, expected: str) -> None:
    assert format_major(amount, currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (1, "EUR"),
        (1234, "EUR"),
        (99999999, "EUR"),
        (1, "JPY"),
        (1200, "JPY"),
        (1, "KWD"),
        (1500, "KWD"),
        (123456789, "KWD"),
    ],
)
def test_format_then_parse_round_trips(amount: int, currency: str) -> None:
    assert parse_major(format_major(amount, currency), currency) == amount


@pytest.mark.parametrize(
    ("text", "currency"), [("12.34", "EUR"), ("0.01", "EUR"), ("1200", "JPY"), ("1.500", "KWD")]
)
def test_parse_then_format_round_trips(text: str, currency: str) -> None:
    assert format_major(parse_major(text, currency), currency) == text
