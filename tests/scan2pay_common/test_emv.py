"""EMV MPM payloads: the CRC on known vectors, every data object, the
parser's refusals, the profiles, and an independent parser's reading."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from brcode.utils.brcodeId import jsonFromBrcode  # Stark Bank's BR Code parser
from hypothesis import given
from hypothesis import strategies as st

from scan2pay_common import emv
from scan2pay_common.emv import EmvError, MerchantInfo

URL = "HTTP://127.0.0.1:8080/Q/FFFEFO3STNTBVBXMOIDR2PCRXFIRV75Y"
CAFE = MerchantInfo("Café Müller & Söhne GmbH Berlin", "5814", "DE", "Berlin")


def independent(payload: str) -> dict[str, Any]:
    parsed: dict[str, Any] = jsonFromBrcode(payload)
    return parsed


def objects_of(payload: str) -> list[tuple[str, str]]:
    """The top-level data objects in order, read by hand."""
    out = []
    at = 0
    while at < len(payload):
        tag, length = payload[at : at + 2], int(payload[at + 2 : at + 4])
        out.append((tag, payload[at + 4 : at + 4 + length]))
        at += 4 + length
    return out


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        ("123456789", "29B1"),  # the catalogue's check value of CRC-16/CCITT-FALSE
        ("", "FFFF"),  # the initial value, untouched
        ("A", "B915"),
        # A published PIX static code (the Banco Central's BR Code manual example).
        (
            "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
            "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304",
            "1D3D",
        ),
    ],
)
def test_crc16_known_vectors(data: str, crc: str) -> None:
    assert emv.crc16(data) == crc


def test_dynamic_payload_has_every_tag_in_order() -> None:
    payload = emv.dynamic_payload(
        URL, CAFE, amount=1234, currency="EUR", reference="REF123", terminal_label="lane-1"
    )
    objects = objects_of(payload)
    assert [tag for tag, _ in objects] == [
        "00", "01", "26", "52", "53", "54", "58", "59", "60", "62", "63",
    ]  # fmt: skip
    values = dict(objects)
    assert values["00"] == "01"
    assert values["01"] == "12"
    assert objects_of(values["26"]) == [("00", "org.scan2pay"), ("01", URL)]
    assert values["52"] == "5814"
    assert values["53"] == "978"
    assert values["54"] == "12.34"
    assert values["58"] == "DE"
    assert values["59"] == "Cafe Muller & Sohne GmbH"  # transliterated, cut to 25, trimmed
    assert values["60"] == "Berlin"
    assert objects_of(values["62"]) == [("05", "REF123"), ("07", "lane-1")]
    assert payload[-8:-4] == "6304"
    assert values["63"] == emv.crc16(payload[:-4])


def test_static_payload_has_no_amount() -> None:
    payload = emv.static_payload("https://pay.example.com/S/ABC", CAFE, currency="EUR")
    values = dict(objects_of(payload))
    assert values["01"] == "11"
    assert "54" not in values
    assert "62" not in values
    assert emv.url_of_payload(payload) == "https://pay.example.com/S/ABC"
    assert independent(payload)["01"] == "11"


@pytest.mark.parametrize(
    ("amount", "currency", "written", "number"),
    [(1234, "EUR", "12.34", "978"), (1200, "JPY", "1200", "392"), (1500, "KWD", "1.500", "414")],
)
def test_amount_in_major_units_with_the_currencys_digits(
    amount: int, currency: str, written: str, number: str
) -> None:
    payload = emv.dynamic_payload(URL, CAFE, amount=amount, currency=currency)
    parsed = emv.parse_payload(payload)
    assert (parsed.amount, parsed.objects["53"], parsed.currency) == (written, number, currency)


def test_pix_profile_carries_the_location_in_25_without_scheme() -> None:
    bakery = MerchantInfo("Padaria São João", "5812", "BR", "São Paulo", profile="pix")
    url = "https://pix.example.com/qr/v2/ABC"
    payload = emv.dynamic_payload(url, bakery, amount=1000, currency="BRL", reference="TX1")
    parsed = independent(payload)
    assert parsed["26"] == {"00": "br.gov.bcb.pix", "25": "pix.example.com/qr/v2/ABC"}
    assert (parsed["59"], parsed["60"], parsed["54"], parsed["53"]) == (
        "Padaria Sao Joao",
        "Sao Paulo",
        "10.00",
        "986",
    )
    assert emv.url_of_payload(payload) == url
    with pytest.raises(EmvError, match="https:// URLs only"):
        emv.dynamic_payload("http://pix.example.com/x", bakery, amount=1, currency="BRL")


def test_a_configured_gui_replaces_the_profiles() -> None:
    merchant = MerchantInfo("Shop", "5411", "SG", "Singapore", gui="com.example.pay")
    payload = emv.dynamic_payload(URL, merchant, amount=5, currency="SGD")
    assert emv.parse_payload(payload).templates["26"] == {"00": "com.example.pay", "01": URL}
    assert emv.url_of_payload(payload) == URL


def test_independent_parser_reads_what_we_build() -> None:
    payload = emv.dynamic_payload(
        URL, CAFE, amount=1234, currency="EUR", reference="REF123", terminal_label="lane-1"
    )
    assert independent(payload) == {
        "00": "01",
        "01": "12",
        "26": {"00": "org.scan2pay", "01": URL},
        "52": "5814",
        "53": "978",
        "54": "12.34",
        "58": "DE",
        "59": "Cafe Muller & Sohne GmbH",
        "60": "Berlin",
        "62": {"05": "REF123", "07": "lane-1"},
        "63": payload[-4:],
    }


def test_parser_returns_the_fields() -> None:
    payload = emv.dynamic_payload(
        URL, CAFE, amount=99, currency="EUR", reference="R", terminal_label="T"
    )
    parsed = emv.parse_payload(payload)
    assert parsed.dynamic
    assert (parsed.merchant_name, parsed.merchant_city) == ("Cafe Muller & Sohne GmbH", "Berlin")
    assert (parsed.reference, parsed.terminal_label, parsed.amount) == ("R", "T", "0.99")
    assert parsed.url() == URL


def _with_crc(body: str) -> str:
    return body + emv.crc16(body)


GOOD = emv.dynamic_payload(URL, CAFE, amount=1234, currency="EUR")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), "CRC mismatch"),
        (GOOD.replace("12.34", "12.35"), "CRC mismatch"),
        (GOOD[:-4] + GOOD[-4:].lower(), "6304 and 4 hex digits"),
        (GOOD[:-8], "ends with its CRC"),
        ("http://example.com/Q/ABC", "starts with 000201"),
        (_with_crc("000201010212520458145303978" + "6304"), "missing"),
        (_with_crc("00020101021226050009x5204581453039785802DE5901A6001B" + "6304"), "runs past"),
        (
            _with_crc("0002010102125204581453039785802DE5901A6001B" + "6304"),
            "no merchant account",
        ),
        (
            _with_crc("0002010102135204581453039785802DE5901A6001B26050001x" + "6304"),
            "must be 11 or 12",
        ),
        (
            _with_crc("0002010102125204581452045814" + "6304"),
            "appears twice",
        ),
        ("0" * 600, "longer than 512"),
    ],
)
def test_parser_refuses_clearly(payload: str, message: str) -> None:
    with pytest.raises(EmvError, match=message):
        emv.parse_payload(payload)


def test_url_of_an_unknown_scheme_is_refused() -> None:
    body = "00020101021126200016com.other.scheme5204581453039785802DE5901A6001B6304"
    with pytest.raises(EmvError, match="no payment URL"):
        emv.url_of_payload(body + emv.crc16(body))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"mcc": "581"}, "invalid_mcc"),
        ({"mcc": "58a4"}, "invalid_mcc"),
        ({"country": "de"}, "invalid_country"),
        ({"country": "DEU"}, "invalid_country"),
        ({"city": "Sankt Peter-Ording am Meer"}, "invalid_city"),
        ({"city": "東京"}, "invalid_city"),
        ({"name": "東京の店"}, "invalid_merchant_name"),
        ({"profile": "upi"}, "invalid_emv_profile"),
        ({"gui": "has space"}, "invalid_emv"),
        ({"gui": "x" * 33}, "invalid_emv"),
    ],
)
def test_merchant_info_validates_itself(kwargs: dict[str, str], code: str) -> None:
    fields = {"name": "Shop", "mcc": "5814", "country": "DE", "city": "Berlin", **kwargs}
    with pytest.raises(EmvError) as caught:
        MerchantInfo(**fields)
    assert caught.value.code == code


def test_code_validates_itself() -> None:
    with pytest.raises(EmvError, match="carries its amount"):
        emv.EmvCode(URL, CAFE, "EUR", None, dynamic=True)
    with pytest.raises(EmvError, match="no amount"):
        emv.EmvCode(URL, CAFE, "EUR", 5, dynamic=False)
    with pytest.raises(EmvError, match="reference label"):
        emv.EmvCode(URL, CAFE, "EUR", 5, dynamic=True, reference="x" * 26)
    with pytest.raises(EmvError, match="http"):
        emv.EmvCode("ftp://x", CAFE, "EUR", 5, dynamic=True)
    with pytest.raises(EmvError, match="at most 99"):
        emv.dynamic_payload("https://example.com/" + "Q" * 90, CAFE, amount=5, currency="EUR")


def test_a_scheme_plugs_in_by_registering_its_profile() -> None:
    scheme = emv.Profile("examplepay", gui="com.example.qr", url_tag="03", template="30")
    emv.register_profile(scheme)
    emv.register_profile(scheme)  # the same one again is fine
    with pytest.raises(EmvError, match="already registered"):
        emv.register_profile(emv.Profile("examplepay", gui="com.other", url_tag="03"))
    merchant = MerchantInfo("Shop", "5814", "DE", "Berlin", profile="examplepay")
    payload = emv.dynamic_payload(URL, merchant, amount=5, currency="EUR")
    assert independent(payload)["30"] == {"00": "com.example.qr", "03": URL}
    assert emv.url_of_payload(payload) == URL
    assert emv.profile_named("examplepay") is scheme


def test_transliteration() -> None:
    assert emv.to_common_charset("Straße  Ünïcödé ﬁne") == "Strasse Unicode fine"
    assert emv.to_common_charset("Łódź Smørrebrød") == "Lodz Smorrebrod"
    assert emv.to_common_charset("Crème brûlée") == "Creme brulee"


@given(st.text(max_size=600) | st.builds(lambda s: "000201" + s, st.text(max_size=200)))
def test_the_parser_raises_nothing_but_emv_error(text: str) -> None:
    with contextlib.suppress(EmvError):
        emv.url_of_payload(text)


@given(st.data())
def test_a_mutated_payload_is_refused_or_still_well_formed(data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(GOOD) - 1))
    char = data.draw(st.characters(codec="ascii"))
    mutated = GOOD[:at] + char + GOOD[at + 1 :]
    try:
        parsed = emv.parse_payload(mutated)
    except EmvError:
        return
    assert mutated == GOOD  # only the unchanged payload passes its CRC
    assert parsed.url() == URL


def test_a_real_pix_static_code_is_not_read_as_ours() -> None:
    """The Banco Central's example: a PIX key in 26/01, no URL. Its CRC and
    structure hold, but it names no URL we pay."""
    body = (
        "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
        "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304"
    )
    payload = body + emv.crc16(body)
    assert emv.parse_payload(payload).merchant_name == "Fulano de Tal"
    with pytest.raises(EmvError, match="no payment URL"):
        emv.url_of_payload(payload)
    # Nor a scan2pay template whose 01 holds no URL.
    odd = "00020101021226220012org.scan2pay0102ab5204581453039785802DE5901A6001B6304"
    with pytest.raises(EmvError, match="no payment URL"):
        emv.url_of_payload(odd + emv.crc16(odd))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "not a word", "gui": "x.y", "url_tag": "01"}, "must be a word"),
        ({"name": "p", "gui": "x.y", "url_tag": "00"}, "two digits other than 00"),
        ({"name": "p", "gui": "x.y", "url_tag": "01", "template": "52"}, "from 26 to 51"),
        ({"name": "p", "gui": "x.y", "url_tag": "01", "implied_scheme": "HTTPS://"}, "like"),
        ({"name": "p", "gui": "", "url_tag": "01"}, "globally unique identifier"),
    ],
)
def test_a_profile_checks_itself(fields: dict[str, str], message: str) -> None:
    with pytest.raises(EmvError, match=message):
        emv.Profile(**fields)
