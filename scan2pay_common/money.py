"""Money as integers in the currency's minor unit; never floats.

The list of currencies and their exponents (EUR 2, JPY 0, KWD 3) is ISO 4217's,
taken from the ``iso4217`` package so that it follows the standard's amendments.
Codes without a minor unit (gold, SDR, the testing code) are not money here.
"""

from __future__ import annotations

import re

from iso4217 import Currency as _Iso4217

from .errors import InvalidValue

_CODE = re.compile(r"[A-Z]{3}")
_MAJOR = re.compile(r"[0-9]+(\.[0-9]+)?")


def _exponents() -> dict[str, int]:
    return {c.code: c.exponent for c in _Iso4217 if c.exponent is not None}


EXPONENTS: dict[str, int] = _exponents()


def check_currency(code: object) -> str:
    """Returns ``code`` if it is an ISO 4217 currency with a minor unit."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidValue(
            "invalid_currency", "currency must be a three-letter upper-case ISO 4217 code"
        )
    if code not in EXPONENTS:
        raise InvalidValue("invalid_currency", f"{code} is not an ISO 4217 currency")
    return code


def exponent(currency: str) -> int:
    return EXPONENTS[check_currency(currency)]


def check_minor_amount(amount: object, *, maximum: int | None = None) -> int:
    """Returns ``amount`` if it is a positive integer (not a bool, not a float)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidValue(
            "invalid_amount", "amount must be an integer in the currency's minor unit"
        )
    if amount <= 0:
        raise InvalidValue("invalid_amount", "amount must be greater than zero")
    if maximum is not None and amount > maximum:
        raise InvalidValue("amount_too_large", f"amount must be at most {maximum}")
    return amount


def parse_major(text: object, currency: str) -> int:
    """Parses ``"12.34"`` EUR into 1234, exactly: the digits are read as
    integers, so that more decimals than the currency has is an error, never
    a rounding (trailing zeros are fine: ``"12.340"`` is 1234)."""
    exp = exponent(currency)
    if not isinstance(text, str) or not _MAJOR.fullmatch(text.strip()):
        raise InvalidValue("invalid_amount", f"{text!r} is not an amount like 12.34")
    whole, _, frac = text.strip().partition(".")
    frac = frac.rstrip("0")
    if len(frac) > exp:
        raise InvalidValue(
            "invalid_amount", f"{currency} has {exp} decimal places; {text!r} has more"
        )
    scale: int = 10**exp
    return int(whole) * scale + (int(frac.ljust(exp, "0")) if exp else 0)


def format_major(amount: int, currency: str) -> str:
    """1234 EUR -> ``"12.34"``; 1200 JPY -> ``"1200"``; 1500 KWD -> ``"1.500"``."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


# Signs that stand before the amount on a screen. Currencies not listed are
# shown with their code ("KWD 1.500"), which no reader can mistake.
SIGNS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "JPY": "¥",
    "INR": "₹",
    "KRW": "₩",
    "ILS": "₪",
    "NGN": "₦",
    "PHP": "₱",
    "TRY": "₺",
    "UAH": "₴",
    "VND": "₫",
    "THB": "฿",
}


def format_display(amount: int, currency: str) -> str:
    """For people: ``€12.34``, ``¥1,200``, ``KWD 1.500``, with thousands grouped."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    number = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    symbol = SIGNS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency} {number}"
