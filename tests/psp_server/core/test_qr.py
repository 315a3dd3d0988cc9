"""A merchant's QR settings and a checkout's payload, without I/O."""

from __future__ import annotations

import pytest

from psp_server.core import credentials
from psp_server.core.qr import (
    URL_ONLY,
    QrSettings,
    QrSettingsChange,
    check_buildable,
    checkout_id_of_reference,
    checkout_payload,
    emv_reference,
    static_code_payload,
)
from scan2pay_common import emv
from scan2pay_common.errors import InvalidValue

EMV = QrSettings("emv", "5814", "DE", "Berlin")
URL = "HTTP://127.0.0.1:8080/Q/" + "A" * 32


def test_a_checkout_id_makes_a_reference_of_25_characters_that_gives_it_back() -> None:
    for _ in range(50):
        checkout_id = credentials.new_id("co")
        reference = emv_reference(checkout_id)
        assert len(reference) <= emv.MAX_LABEL
        assert reference.isalnum()
        assert checkout_id_of_reference(reference) == checkout_id
    assert emv_reference("co_short") == "co_short"


def test_url_merchants_get_no_payload() -> None:
    assert (
        checkout_payload(
            merchant_name="Shop",
            settings=URL_ONLY,
            checkout_id="co_1",
            qr_url=URL,
            amount=5,
            currency="EUR",
            terminal_id=None,
        )
        is None
    )


def test_an_emv_merchants_payload() -> None:
    payload = checkout_payload(
        merchant_name="Shop",
        settings=EMV,
        checkout_id="co_01a246d6adff58d3416c9840c17f",
        qr_url=URL,
        amount=1234,
        currency="EUR",
        terminal_id="a-terminal-id-longer-than-twenty-five",
    )
    assert payload is not None
    parsed = emv.parse_payload(payload)
    assert parsed.url() == URL
    assert parsed.terminal_label == "a-terminal-id-longer-than"  # cut to 25
    assert parsed.reference is not None
    assert checkout_id_of_reference(parsed.reference) == "co_01a246d6adff58d3416c9840c17f"


def test_a_change_keeps_what_it_does_not_name_and_null_clears() -> None:
    change = QrSettingsChange.parse({"emv_gui": "de.example"})
    assert change.applied_to(EMV) == QrSettings("emv", "5814", "DE", "Berlin", emv_gui="de.example")
    cleared = QrSettingsChange.parse({"qr_format": "url", "city": None}).applied_to(EMV)
    assert cleared == QrSettings("url", "5814", "DE", None)
    with pytest.raises(InvalidValue, match="needs city"):
        QrSettingsChange.parse({"city": None}).applied_to(EMV)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_body"),
        ({"qr_format": None}, "invalid_type"),
        ({"emv_profile": None}, "invalid_type"),
        ({"mcc": 5814}, "invalid_type"),
        ({"shape": "round"}, "unknown_field"),
    ],
)
def test_a_change_is_parsed_strictly(body: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        QrSettingsChange.parse(body)
    assert caught.value.code == code


def test_settings_that_cannot_build_a_payload_are_refused_when_set() -> None:
    check_buildable("Café", EMV, "HTTP://127.0.0.1:8080")
    with pytest.raises(InvalidValue, match="no letters"):
        check_buildable("東京の店", EMV, "HTTP://127.0.0.1:8080")
    with pytest.raises(InvalidValue, match="at most 99 fit"):
        check_buildable("Café", EMV, "HTTPS://" + "X" * 60 + ".EXAMPLE")
    with pytest.raises(InvalidValue, match="https:// URLs only"):
        check_buildable("Café", QrSettings("emv", "5814", "BR", "Rio", "pix"), "HTTP://X")


def test_an_amount_longer_than_a_payload_holds_is_too_large() -> None:
    with pytest.raises(InvalidValue) as caught:
        checkout_payload(
            merchant_name="Shop",
            settings=EMV,
            checkout_id="co_1",
            qr_url=URL,
            amount=10**13,
            currency="EUR",
            terminal_id=None,
        )
    assert caught.value.code == "amount_too_large"


STATIC_URL = "HTTP://127.0.0.1:8080/S/" + "B" * 32


def test_a_printed_codes_payload_is_static_and_needs_a_currency() -> None:
    def of(settings: QrSettings, currency: str | None) -> str | None:
        return static_code_payload(
            merchant_name="Shop",
            settings=settings,
            url=STATIC_URL,
            currency=currency,
            terminal_id="a-terminal-id-longer-than-twenty-five",
        )

    assert of(URL_ONLY, "EUR") is None
    assert of(EMV, None) is None  # tag 53 is mandatory: no currency, no payload
    payload = of(EMV, "JPY")
    assert payload is not None
    parsed = emv.parse_payload(payload)
    assert not parsed.dynamic
    assert (parsed.url(), parsed.currency, parsed.amount) == (STATIC_URL, "JPY", None)
    assert parsed.terminal_label == "a-terminal-id-longer-than"
    assert parsed.reference is None
