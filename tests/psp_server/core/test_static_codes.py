"""The rules of printed till codes, called directly: what a merchant may
ask for, what a scan shows, and which typed amounts become checkouts."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from psp_server.core.errors import Refusal, Refused
from psp_server.core.machine import Status
from psp_server.core.records import Checkout
from psp_server.core.static_codes import (
    STATIC_CHECKOUT_EXPIRES_IN,
    OpenAmount,
    ScanKind,
    StaticCode,
    StaticCodeRequest,
    check_typed_amount,
    decide_scan,
    new_static_checkout,
    new_static_code,
)
from scan2pay_common.errors import InvalidValue
from scan2pay_common.static_codes import short_id

NOW = 1_764_000_000_000
PUBLIC = "HTTP://PAY.EXAMPLE:8080"
EUR = OpenAmount("EUR", 100, 5000)


def code(open_amount: OpenAmount | None = EUR, **changes: Any) -> StaticCode:
    made = new_static_code(
        "mer_1",
        "till-1",
        StaticCodeRequest(label="Counter 1", open_amount=open_amount),
        public_url=PUBLIC,
        now=NOW,
    )
    return replace(made, **changes)


def cashiers(**changes: Any) -> Checkout:
    fields: dict[str, Any] = {
        "id": "co_1",
        "merchant_id": "mer_1",
        "order_id": "A-1",
        "amount": 850,
        "currency": "EUR",
        "description": None,
        "terminal_id": "till-1",
        "code": "C" * 32,
        "qr_url": f"{PUBLIC}/Q/{'C' * 32}",
        "status": Status.PENDING,
        "created_at": NOW - 1000,
        "expires_at": NOW + 60_000,
        "updated_at": NOW - 1000,
    }
    return Checkout(**{**fields, **changes})


def test_a_new_code_is_a_url_in_upper_case_with_160_random_bits() -> None:
    made = code()
    assert re.fullmatch(r"[A-Z2-7]{32}", made.code)  # 32 base32 characters: 160 bits
    assert made.url == f"{PUBLIC}/S/{made.code}"
    assert made.url == made.url.upper()
    assert made.short_id == short_id(made.id) == made.id[-6:].upper()
    assert code().code != made.code
    assert not made.revoked
    unlabelled = new_static_code(
        "mer_1", "till-9", StaticCodeRequest(None, None), public_url=PUBLIC + "/", now=NOW
    )
    assert unlabelled.label == "till-9"
    assert unlabelled.url.startswith(f"{PUBLIC}/S/")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"open_amount": {"currency": "EUR", "min": 10, "max": 9}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 0, "max": 9}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 1, "max": 10**9}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "XAU", "min": 1, "max": 9}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 1.5, "max": 9}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 1, "max": 9, "x": 1}}, "unknown_field"),
        ({"open_amount": []}, "invalid_open_amount"),
        ({"label": ""}, "invalid_label"),
        ({"label": "x" * 41}, "invalid_label"),
        ({"label": "a\nb"}, "invalid_label"),
        ({"label": 7}, "invalid_label"),
        ({"till": "1"}, "unknown_field"),
    ],
)
def test_bad_requests_are_refused(body: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        StaticCodeRequest.parse(body, max_amount=1_000_000)
    assert raised.value.code == error


def test_requests_that_keep_the_rules() -> None:
    assert StaticCodeRequest.parse({}, max_amount=10) == StaticCodeRequest(None, None)
    assert StaticCodeRequest.parse(
        {"label": "Bar", "open_amount": {"currency": "JPY", "min": 5, "max": 5}}, max_amount=10
    ) == StaticCodeRequest("Bar", OpenAmount("JPY", 5, 5))
    assert StaticCodeRequest.parse({"open_amount": None}, max_amount=10).open_amount is None


def test_a_scan_shows_the_tills_checkout_first() -> None:
    assert decide_scan(code(), cashiers(), now=NOW).kind is ScanKind.CHECKOUT
    assert decide_scan(code(), cashiers(), now=NOW).checkout == cashiers()
    assert decide_scan(code(None), cashiers(), now=NOW).kind is ScanKind.CHECKOUT


@pytest.mark.parametrize(
    "other",
    [
        cashiers(expires_at=NOW),  # lapsed at this very millisecond
        cashiers(status=Status.PAID),
        cashiers(terminal_id="till-2"),
        cashiers(merchant_id="mer_2"),
        cashiers(static_code_id="sc_019ab52e4f1c9f8e7d6c5b4a3928"),  # a customer's own
    ],
)
def test_a_checkout_that_is_not_the_tills_pending_one_is_not_shown(other: Checkout) -> None:
    assert decide_scan(code(), other, now=NOW).kind is ScanKind.OPEN_AMOUNT
    assert decide_scan(code(None), other, now=NOW).kind is ScanKind.NOTHING_YET
    assert decide_scan(code(), other, now=NOW).checkout is None


def test_a_revoked_code_shows_nothing_but_that() -> None:
    revoked = code(revoked_at=NOW - 1)
    assert decide_scan(revoked, cashiers(), now=NOW).kind is ScanKind.REVOKED
    assert decide_scan(revoked, None, now=NOW).checkout is None


@pytest.mark.parametrize(
    ("static", "pending", "amount", "refusal"),
    [
        (code(revoked_at=NOW), None, 500, Refusal.STATIC_CODE_REVOKED),
        (code(), cashiers(), 500, Refusal.TILL_HAS_CHECKOUT),
        (code(None), None, 500, Refusal.OPEN_AMOUNT_NOT_ALLOWED),
        (code(), None, 99, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, 5001, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, 0, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, -100, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, 100.0, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, "500", Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, True, Refusal.AMOUNT_OUT_OF_RANGE),
        (code(), None, None, Refusal.AMOUNT_OUT_OF_RANGE),
    ],
)
def test_typed_amounts_the_rules_refuse(
    static: StaticCode, pending: Checkout | None, amount: object, refusal: Refusal
) -> None:
    with pytest.raises(Refused) as raised:
        check_typed_amount(static, pending, amount, now=NOW)
    assert raised.value.refusal is refusal


@pytest.mark.parametrize("amount", [100, 101, 4999, 5000])
def test_typed_amounts_within_the_bounds(amount: int) -> None:
    assert check_typed_amount(code(), None, amount, now=NOW) == (EUR, amount)
    lapsed = cashiers(expires_at=NOW - 1)
    assert check_typed_amount(code(), lapsed, amount, now=NOW) == (EUR, amount)


def test_a_typed_amount_becomes_a_checkout_of_its_own_at_the_till() -> None:
    static = code()
    first = new_static_checkout(static, 1250, now=NOW, public_url=PUBLIC)
    second = new_static_checkout(static, 1250, now=NOW, public_url=PUBLIC)
    assert first.id != second.id
    assert first.code != second.code
    assert (first.merchant_id, first.terminal_id, first.static_code_id) == (
        "mer_1",
        "till-1",
        static.id,
    )
    assert (first.amount, first.currency, first.status) == (1250, "EUR", Status.PENDING)
    assert first.qr_url == f"{PUBLIC}/Q/{first.code}"
    assert first.order_id == f"static-{first.id}"
    assert first.expires_at == NOW + STATIC_CHECKOUT_EXPIRES_IN * 1000
    snapshot = first.snapshot().to_dict()
    assert (snapshot["source"], snapshot["static_code_id"]) == ("static", static.id)
    assert "source" not in cashiers().snapshot().to_dict()


def test_open_amounts_check_themselves() -> None:
    with pytest.raises(InvalidValue):
        OpenAmount("EUR", 10, 9)
    with pytest.raises(InvalidValue):
        OpenAmount("eur", 1, 9)
    assert EUR.to_json() == {"currency": "EUR", "min": 100, "max": 5000}
