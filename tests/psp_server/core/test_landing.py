"""What the landing page makes of a pasted text, without I/O: this PSP's
URLs and EMV payloads around them lead to their page; everything else is
refused with the reason."""

from __future__ import annotations

import pytest

from psp_server.core.landing import MAX_TEXT, Destination, destination_of
from scan2pay_common import emv
from scan2pay_common.errors import InvalidValue

PUBLIC = "HTTP://127.0.0.1:8080"
CODE = "IEQH746YNG7BY3A4ROGUBBBAYN3BO47O"
MERCHANT = emv.MerchantInfo("Café Müller", "5814", "DE", "Berlin")
OTHER_SCHEME = emv.Profile("landingtest", gui="com.example.other", url_tag="03", template="30")


def _payload(url: str, merchant: emv.MerchantInfo = MERCHANT) -> str:
    return emv.dynamic_payload(url, merchant, amount=1234, currency="EUR", reference="R1")


@pytest.mark.parametrize(
    ("text", "public", "expected"),
    [
        (f"{PUBLIC}/Q/{CODE}", PUBLIC, Destination("Q", CODE)),
        (f"{PUBLIC}/S/{CODE}", PUBLIC, Destination("S", CODE)),
        # As a person types it: lower case, spaces and a line break around it.
        (f"  http://127.0.0.1:8080/q/{CODE.lower()}\n", PUBLIC, Destination("Q", CODE)),
        # The default port, said or not.
        (f"https://pay.example/Q/{CODE}", "HTTPS://PAY.EXAMPLE:443", Destination("Q", CODE)),
        # Behind a path prefix.
        (f"HTTPS://PAY.EXAMPLE/PSP/Q/{CODE}", "HTTPS://PAY.EXAMPLE/PSP/", Destination("Q", CODE)),
        (_payload(f"{PUBLIC}/Q/{CODE}"), PUBLIC, Destination("Q", CODE)),
        (
            emv.static_payload(f"{PUBLIC}/S/{CODE}", MERCHANT, currency="EUR"),
            PUBLIC,
            Destination("S", CODE),
        ),
        # PIX carries the URL without its https://.
        (
            _payload(
                f"HTTPS://PAY.EXAMPLE/Q/{CODE}",
                emv.MerchantInfo("Loja", "5814", "BR", "Sao Paulo", profile="pix"),
            ),
            "HTTPS://PAY.EXAMPLE",
            Destination("Q", CODE),
        ),
    ],
)
def test_our_urls_and_payloads_lead_to_their_page(
    text: str, public: str, expected: Destination
) -> None:
    found = destination_of(text, public)
    assert found == expected
    assert found.path == f"{expected.kind}/{CODE}"


def _refusal(text: str, public: str = PUBLIC) -> InvalidValue:
    with pytest.raises(InvalidValue) as raised:
        destination_of(text, public)
    assert raised.value.field == "code"
    return raised.value


def _broken_crc(payload: str) -> str:
    last = payload[-1]
    return payload[:-1] + ("0" if last != "0" else "1")


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("", "missing_code", "paste the payment link"),
        ("   \n", "missing_code", "paste the payment link"),
        ("x" * (MAX_TEXT + 1), "code_too_long", f"at most {MAX_TEXT}"),
        ("hello", "invalid_emv", "neither a payment URL nor an EMV payload"),
        ("javascript:alert(1)", "invalid_emv", "neither a payment URL"),
        (f"ftp://127.0.0.1:8080/Q/{CODE}", "invalid_emv", "neither a payment URL"),
        (_broken_crc(_payload(f"{PUBLIC}/Q/{CODE}")), "invalid_emv", "CRC mismatch"),
        ("000201" + "x" * 20, "invalid_emv", "ends with its CRC"),
        (f"https://evil.example/Q/{CODE}", "foreign_code", "payment service (evil.example)"),
        (f"http://127.0.0.1:8081/Q/{CODE}", "foreign_code", "another payment service"),
        (f"https://127.0.0.1:8080/Q/{CODE}", "foreign_code", "another payment service"),
        (_payload(f"https://evil.example/Q/{CODE}"), "foreign_code", "(evil.example)"),
        (f"http://127.0.0.1:bad/Q/{CODE}", "invalid_url", "not a well-formed"),
        (f"{PUBLIC}/merchant", "not_a_payment_link", "no payment on this service"),
        (f"{PUBLIC}/Q/", "not_a_payment_link", "no payment on this service"),
        (f"{PUBLIC}/Q/{CODE}/more", "not_a_payment_link", "no payment on this service"),
        (f"{PUBLIC}/Q/{CODE}?next=https://evil.example", "not_a_payment_link", "no payment"),
        (f"{PUBLIC}/Q/{CODE}#x", "not_a_payment_link", "no payment on this service"),
        (f"{PUBLIC}/X/{CODE}", "not_a_payment_link", "no payment on this service"),
        (f"{PUBLIC}/Q/{CODE[:8]}", "malformed_code", "cut short or mistyped"),
        (f"{PUBLIC}/Q/{CODE[:-1]}1", "malformed_code", "cut short or mistyped"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, code: str, words: str) -> None:
    refusal = _refusal(text)
    assert refusal.code == code, refusal.message
    assert words in refusal.message


def test_a_path_prefix_must_be_the_public_urls() -> None:
    refusal = _refusal(f"HTTPS://PAY.EXAMPLE/Q/{CODE}", "HTTPS://PAY.EXAMPLE/PSP")
    assert refusal.code == "not_a_payment_link"


def test_a_payload_of_a_scheme_no_profile_names_is_refused() -> None:
    # Built with a profile that parsing then no longer knows: what a code of
    # another country's scheme looks like to this PSP.
    emv.register_profile(OTHER_SCHEME)
    try:
        payload = _payload(
            f"{PUBLIC}/Q/{CODE}", emv.MerchantInfo("Shop", "5814", "DE", "Berlin", "landingtest")
        )
        assert destination_of(payload, PUBLIC) == Destination("Q", CODE)
    finally:
        emv._PROFILES.pop(OTHER_SCHEME.name)
    refusal = _refusal(payload)
    assert (refusal.code, refusal.message) == (
        "invalid_emv",
        "this is not a payment code this service can read: the payload names no payment URL"
        " of a scheme this system knows",
    )


def test_the_host_of_another_service_is_named_cut_short() -> None:
    host = "a" * 200 + ".example"
    refusal = _refusal(f"https://{host}/Q/{CODE}")
    assert "a" * 64 + ")" in refusal.message
    assert "a" * 65 not in refusal.message


def test_a_destination_checks_itself() -> None:
    with pytest.raises(InvalidValue):
        Destination("X", CODE)  # type: ignore[arg-type]  # a kind the type refuses, to see the check refuse it too
    with pytest.raises(InvalidValue):
        Destination("Q", CODE.lower())
