"""A printed till code's request as typed: amounts in major units become
the API body's minor units, and what the body refuses is refused."""

from __future__ import annotations

import pytest

from psp_server.core.static_code_input import request_in_major_units
from psp_server.core.static_codes import OpenAmount, StaticCodeRequest
from scan2pay_common.errors import InvalidValue


def test_amounts_in_major_units_become_the_open_amount() -> None:
    made = request_in_major_units(
        label="Counter 1", currency="EUR", least="1", most="50.00", max_amount=100_000
    )
    assert made == StaticCodeRequest("Counter 1", OpenAmount("EUR", 100, 5000))


def test_without_a_currency_there_is_no_open_amount() -> None:
    made = request_in_major_units(label=None, currency="", least="", most="", max_amount=100)
    assert made == StaticCodeRequest(None, None)


@pytest.mark.parametrize(
    ("currency", "least", "most", "code"),
    [
        ("eur", "1", "2", "invalid_currency"),
        ("EUR", "1.001", "2", "invalid_amount"),
        ("EUR", None, "2", "invalid_amount"),
        ("EUR", "3", "2", "invalid_open_amount"),
    ],
)
def test_what_the_api_refuses_is_refused(
    currency: str, least: object, most: object, code: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        request_in_major_units(
            label=None, currency=currency, least=least, most=most, max_amount=100_000
        )
    assert refused.value.code == code
