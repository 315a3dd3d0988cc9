"""scan2pay_common.messages: the MQTT payloads, strict both ways."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import (
    CHECKOUT_STATUSES,
    EVENT_FOR_STATUS,
    EVENT_TYPES,
    SCREENS,
    STATUS_FOR_EVENT,
    CheckoutEvent,
    CheckoutSnapshot,
    ShowIdle,
    ShowQr,
    ShowStatus,
    TerminalState,
    display_command_to_json,
    parse_display_command,
)

QR_URL = "HTTPS://PAY.EXAMPLE.COM/Q/MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"


def snapshot(**changes: Any) -> CheckoutSnapshot:
    fields: dict[str, Any] = {
        "id": "co_5f0c1a2b3c4d5e6f7a8b",
        "order_id": "order-42",
        "amount": 1234,
        "currency": "EUR",
        "status": "paid",
        "qr_url": QR_URL,
        "expires_at": "2025-11-24T16:05:00.000Z",
        "terminal_id": "till-1",
        "created_at": "2025-11-24T16:00:00.000Z",
        "description": "2 coffees",
    }
    fields.update(changes)
    return CheckoutSnapshot(**fields)


def event(**changes: Any) -> CheckoutEvent:
    fields: dict[str, Any] = {
        "event_id": "evt_0a1b2c3d4e5f60718293",
        "seq": 1,
        "type": "checkout.paid",
        "merchant_id": "mer_9f8e7d6c5b4a39281706",
        "checkout": snapshot(),
        "created_at": "2025-11-24T16:01:12.345Z",
    }
    fields.update(changes)
    return CheckoutEvent(**fields)


def event_dict(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(event().to_json())
    obj.update(changes)
    return obj


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def code_of(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidValue) as caught:
        call(*args)
    return caught.value.code


# The vocabulary.


def test_vocabulary() -> None:
    assert CHECKOUT_STATUSES == ("pending", "paid", "cancelled", "expired")
    assert EVENT_TYPES == (
        "checkout.paid",
        "checkout.cancelled",
        "checkout.expired",
        "checkout.refunded",
        "checkout.created",
    )
    assert EVENT_FOR_STATUS == {
        "paid": "checkout.paid",
        "cancelled": "checkout.cancelled",
        "expired": "checkout.expired",
    }
    # A refund leaves the checkout paid; a typed checkout is created pending.
    assert STATUS_FOR_EVENT == {
        "checkout.paid": "paid",
        "checkout.cancelled": "cancelled",
        "checkout.expired": "expired",
        "checkout.refunded": "paid",
        "checkout.created": "pending",
    }
    assert (
        *("idle", "qr", "paid", "cancelled", "expired", "refunded", "offline", "error"),
        "display_error",
    ) == SCREENS


# CheckoutEvent.


def test_event_to_json_exact_bytes() -> None:
    assert event().to_json() == (
        b'{"checkout":{"amount":1234,"created_at":"2025-11-24T16:00:00.000Z",'
        b'"currency":"EUR","description":"2 coffees","expires_at":"2025-11-24T16:05:00.000Z",'
        b'"id":"co_5f0c1a2b3c4d5e6f7a8b","order_id":"order-42",'
        b'"qr_url":"HTTPS://PAY.EXAMPLE.COM/Q/MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",'
        b'"refunded_amount":0,'
        b'"status":"paid","terminal_id":"till-1"},"created_at":"2025-11-24T16:01:12.345Z",'
        b'"event_id":"evt_0a1b2c3d4e5f60718293","merchant_id":"mer_9f8e7d6c5b4a39281706",'
        b'"seq":1,"type":"checkout.paid"}'
    )


def test_event_to_json_is_byte_identical_for_equal_events() -> None:
    assert event() == event()
    assert event().to_json() == event().to_json()
    assert CheckoutEvent.from_json(event().to_json()).to_json() == event().to_json()


def test_event_json_has_sorted_keys_and_no_spaces() -> None:
    raw = event().to_json()
    assert b" " not in raw.replace(b"2 coffees", b"")
    obj = json.loads(raw)
    assert list(obj) == sorted(obj)
    assert list(obj["checkout"]) == sorted(obj["checkout"])


def test_event_to_json_keeps_unicode_as_utf8() -> None:
    raw = event(checkout=snapshot(description="Café ☕")).to_json()
    assert "Café ☕".encode() in raw
    assert CheckoutEvent.from_json(raw).checkout.description == "Café ☕"


@pytest.mark.parametrize("status", ["paid", "cancelled", "expired"])
def test_event_round_trips(status: str) -> None:
    original = event(type=EVENT_FOR_STATUS[status], checkout=snapshot(status=status), seq=7)
    assert CheckoutEvent.from_json(original.to_json()) == original
    assert CheckoutEvent.from_json(original.to_json().decode()) == original


def test_event_round_trips_with_nulls_and_other_currencies() -> None:
    original = event(
        checkout=snapshot(terminal_id=None, description=None, amount=1500, currency="KWD")
    )
    raw = original.to_json()
    assert json.loads(raw)["checkout"]["terminal_id"] is None
    assert json.loads(raw)["checkout"]["description"] is None
    assert CheckoutEvent.from_json(raw) == original


def test_event_checkout_description_may_be_absent() -> None:
    obj = event_dict()
    del obj["checkout"]["description"]
    assert CheckoutEvent.from_json(encode(obj)).checkout.description is None


def test_event_checkout_refunded_amount_may_be_absent() -> None:
    """Payloads written before refunds existed still read, as refunded 0."""
    obj = event_dict()
    del obj["checkout"]["refunded_amount"]
    assert CheckoutEvent.from_json(encode(obj)).checkout.refunded_amount == 0


def test_refunded_event_carries_a_paid_checkout_with_its_refunded_total() -> None:
    original = event(type="checkout.refunded", checkout=snapshot(refunded_amount=234), seq=2)
    assert json.loads(original.to_json())["checkout"]["refunded_amount"] == 234
    assert CheckoutEvent.from_json(original.to_json()) == original
    # Wholly refunded, it is still paid.
    whole = event(type="checkout.refunded", checkout=snapshot(refunded_amount=1234))
    assert whole.checkout.status == "paid"


def test_refunded_event_without_a_refunded_amount_is_invalid() -> None:
    obj = event_dict(type="checkout.refunded")
    assert code_of(CheckoutEvent.from_json, encode(obj)) == "invalid_event_type"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"refunded_amount": -1}, "invalid_amount"),
        ({"refunded_amount": 1.0}, "invalid_amount"),
        ({"refunded_amount": "5"}, "invalid_amount"),
        ({"refunded_amount": True}, "invalid_amount"),
        ({"refunded_amount": None}, "invalid_amount"),
        ({"refunded_amount": 1235}, "invalid_amount"),  # more than the amount
        ({"refunded_amount": 1, "status": "cancelled"}, "invalid_amount"),
        ({"refunded_amount": 1, "status": "pending"}, "invalid_amount"),
    ],
)
def test_snapshot_refunded_amount_rules(changes: dict[str, Any], code: str) -> None:
    assert code_of(lambda: snapshot(**changes)) == code


def test_event_to_dict_matches_to_json() -> None:
    assert json.loads(event().to_json()) == event().to_dict()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("paid", "checkout.cancelled"),
        ("paid", "checkout.expired"),
        ("cancelled", "checkout.paid"),
        ("expired", "checkout.cancelled"),
        ("pending", "checkout.paid"),
        ("pending", "checkout.expired"),
        ("cancelled", "checkout.refunded"),
        ("expired", "checkout.refunded"),
        ("pending", "checkout.refunded"),
    ],
)
def test_event_type_must_match_the_checkout_status(status: str, kind: str) -> None:
    obj = event_dict(type=kind)
    obj["checkout"]["status"] = status
    assert code_of(CheckoutEvent.from_json, encode(obj)) == "invalid_event_type"
    assert code_of(lambda: event(type=kind, checkout=snapshot(status=status))) == (
        "invalid_event_type"
    )


@pytest.mark.parametrize(
    "kind", ["checkout.created", "paid", "checkout.PAID", "", "refunded", "checkout.refund"]
)
def test_unknown_event_type_is_rejected(kind: str) -> None:
    assert code_of(CheckoutEvent.from_json, encode(event_dict(type=kind))) == "invalid_event_type"


def test_event_unknown_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        CheckoutEvent.from_json(encode(event_dict(extra=1)))
    assert caught.value.code == "unknown_field"
    assert caught.value.field == "extra"


def test_event_checkout_unknown_field() -> None:
    obj = event_dict()
    obj["checkout"]["merchant_id"] = "mer_1"
    with pytest.raises(InvalidValue) as caught:
        CheckoutEvent.from_json(encode(obj))
    assert caught.value.code == "unknown_field"
    assert caught.value.field == "merchant_id"


@pytest.mark.parametrize(
    "name", ["event_id", "seq", "type", "merchant_id", "checkout", "created_at"]
)
def test_event_missing_field(name: str) -> None:
    obj = event_dict()
    del obj[name]
    with pytest.raises(InvalidValue) as caught:
        CheckoutEvent.from_json(encode(obj))
    assert caught.value.code == "missing_field"
    assert caught.value.field == name


@pytest.mark.parametrize(
    "name",
    [
        "id",
        "order_id",
        "amount",
        "currency",
        "status",
        "qr_url",
        "expires_at",
        "terminal_id",
        "created_at",
    ],
)
def test_event_checkout_missing_field(name: str) -> None:
    obj = event_dict()
    del obj["checkout"][name]
    with pytest.raises(InvalidValue) as caught:
        CheckoutEvent.from_json(encode(obj))
    assert caught.value.code == "missing_field"
    assert caught.value.field == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_id", 5),
        ("event_id", None),
        ("seq", "1"),
        ("seq", 1.0),
        ("seq", True),
        ("seq", None),
        ("type", 1),
        ("merchant_id", 7),
        ("merchant_id", None),
        ("checkout", "co_1"),
        ("checkout", None),
        ("checkout", [1]),
        ("created_at", 1764000072345),
        ("created_at", None),
    ],
)
def test_event_wrong_types_are_invalid_type(name: str, value: object) -> None:
    assert code_of(CheckoutEvent.from_json, encode(event_dict(**{name: value}))) == "invalid_type"


@pytest.mark.parametrize("seq", [0, -1])
def test_event_seq_starts_at_1(seq: int) -> None:
    assert code_of(CheckoutEvent.from_json, encode(event_dict(seq=seq))) == "invalid_type"


def test_event_empty_event_id_is_rejected() -> None:
    assert code_of(CheckoutEvent.from_json, encode(event_dict(event_id=""))) == "invalid_type"


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("amount", "1234", "invalid_amount"),
        ("amount", 12.34, "invalid_amount"),
        ("amount", True, "invalid_amount"),
        ("amount", 0, "invalid_amount"),
        ("amount", -5, "invalid_amount"),
        ("currency", "eur", "invalid_currency"),
        ("currency", "XAU", "invalid_currency"),
        ("currency", 978, "invalid_currency"),
        ("status", "refunded", "invalid_status"),
        ("status", 1, "invalid_status"),
        ("qr_url", "https://pay.example.com/", "invalid_qr_url"),
        ("qr_url", 5, "invalid_qr_url"),
        ("id", "co/1", "invalid_checkout_id"),
        ("id", 1, "invalid_checkout_id"),
        ("order_id", "order 42", "invalid_order_id"),
        ("order_id", "o" * 65, "invalid_order_id"),
        ("terminal_id", "till+1", "invalid_terminal_id"),
        ("terminal_id", 1, "invalid_terminal_id"),
        ("expires_at", "tomorrow", "invalid_timestamp"),
        ("expires_at", "2025-11-24T16:05:00", "invalid_timestamp"),
        ("expires_at", 1764000300000, "invalid_type"),
        ("created_at", None, "invalid_type"),
        ("description", 5, "invalid_type"),
    ],
)
def test_event_bad_checkout_fields(name: str, value: object, code: str) -> None:
    obj = event_dict()
    obj["checkout"][name] = value
    assert code_of(CheckoutEvent.from_json, encode(obj)) == code


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("merchant_id", "mer/1", "invalid_merchant_id"),
        ("merchant_id", "+", "invalid_merchant_id"),
        ("created_at", "yesterday", "invalid_timestamp"),
        ("created_at", "2025-11-24T16:01:12.345", "invalid_timestamp"),
    ],
)
def test_event_bad_values(name: str, value: object, code: str) -> None:
    assert code_of(CheckoutEvent.from_json, encode(event_dict(**{name: value}))) == code


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b'{"event_id":', b"\xff\xfe\x00", "{'a': 1}", b"{}x"]
)
def test_event_malformed_json(raw: bytes | str) -> None:
    assert code_of(CheckoutEvent.from_json, raw) == "invalid_json"


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"null", b"1", b'"event"', b"true"])
def test_event_non_object_json(raw: bytes) -> None:
    assert code_of(CheckoutEvent.from_json, raw) == "invalid_json"


def test_event_empty_object_reports_a_missing_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        CheckoutEvent.from_json(b"{}")
    assert caught.value.code == "missing_field"
    assert caught.value.field == "checkout"  # the first, alphabetically


def test_event_is_frozen() -> None:
    with pytest.raises(AttributeError):
        event().seq = 2  # type: ignore[misc]  # the write to a frozen field the test expects to fail


def test_snapshot_round_trips_through_a_dict() -> None:
    original = snapshot(status="pending")
    assert CheckoutSnapshot.from_dict(original.to_dict()) == original
    assert replace(original, status="expired").status == "expired"


# Display commands.

SHOW_QR = ShowQr(
    checkout_id="co_5f0c1a2b3c4d5e6f7a8b",
    qr_url=QR_URL,
    amount=1234,
    currency="EUR",
    expires_at="2025-11-24T16:05:00.000Z",
    order_id="order-42",
)


def test_show_qr_exact_bytes() -> None:
    assert display_command_to_json(SHOW_QR) == (
        b'{"amount":1234,"checkout_id":"co_5f0c1a2b3c4d5e6f7a8b","currency":"EUR",'
        b'"expires_at":"2025-11-24T16:05:00.000Z","order_id":"order-42",'
        b'"qr_url":"HTTPS://PAY.EXAMPLE.COM/Q/MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",'
        b'"type":"show_qr"}'
    )


def test_show_status_exact_bytes() -> None:
    assert display_command_to_json(ShowStatus("co_1", "paid")) == (
        b'{"checkout_id":"co_1","status":"paid","type":"status"}'
    )


def test_show_idle_exact_bytes() -> None:
    assert display_command_to_json(ShowIdle()) == b'{"type":"idle"}'


@pytest.mark.parametrize(
    "command",
    [
        SHOW_QR,
        replace(SHOW_QR, order_id=None),
        replace(SHOW_QR, amount=1200, currency="JPY"),
        ShowStatus("co_1", "paid"),
        ShowStatus("co_1", "cancelled"),
        ShowStatus("co_1", "expired"),
        ShowIdle(),
    ],
)
def test_display_commands_round_trip(command: ShowQr | ShowStatus | ShowIdle) -> None:
    raw = display_command_to_json(command)
    assert parse_display_command(raw) == command
    assert parse_display_command(raw.decode()) == command
    assert display_command_to_json(parse_display_command(raw)) == raw


def test_show_qr_without_order_id_omits_it() -> None:
    assert "order_id" not in json.loads(display_command_to_json(replace(SHOW_QR, order_id=None)))


def test_show_qr_order_id_may_be_null() -> None:
    obj = json.loads(display_command_to_json(SHOW_QR))
    obj["order_id"] = None
    assert parse_display_command(encode(obj)) == replace(SHOW_QR, order_id=None)


def test_display_commands_are_byte_identical_for_equal_objects() -> None:
    copy = ShowQr(
        **{
            f: getattr(SHOW_QR, f)
            for f in ("checkout_id", "qr_url", "amount", "currency", "expires_at", "order_id")
        }
    )
    assert copy == SHOW_QR
    assert display_command_to_json(copy) == display_command_to_json(SHOW_QR)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"show_text"}',
        b'{"type":"SHOW_QR"}',
        b'{"type":null}',
        b'{"type":1}',
        b"{}",
        b'{"kind":"idle"}',
        b'{"type":["idle"]}',
    ],
)
def test_unknown_display_command_type(raw: bytes) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_display_command(raw)
    assert caught.value.code == "invalid_command"
    assert caught.value.field == "type"


@pytest.mark.parametrize(
    ("obj", "code", "field"),
    [
        ({"type": "idle", "checkout_id": "co_1"}, "unknown_field", "checkout_id"),
        ({"type": "status", "checkout_id": "co_1", "status": "paid", "x": 1}, "unknown_field", "x"),
        ({"type": "status", "status": "paid"}, "missing_field", "checkout_id"),
        ({"type": "status", "checkout_id": "co_1"}, "missing_field", "status"),
        ({"type": "status", "checkout_id": 1, "status": "paid"}, "invalid_type", "checkout_id"),
        ({"type": "status", "checkout_id": "co_1", "status": 1}, "invalid_type", "status"),
    ],
)
def test_bad_status_and_idle_commands(obj: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_display_command(encode(obj))
    assert caught.value.code == code
    assert caught.value.field == field


@pytest.mark.parametrize("status", ["pending", "PAID", "refunded", ""])
def test_show_status_rejects_non_final_statuses(status: str) -> None:
    raw = encode({"type": "status", "checkout_id": "co_1", "status": status})
    assert code_of(parse_display_command, raw) == "invalid_status"


def show_qr_dict(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(display_command_to_json(SHOW_QR))
    obj.update(changes)
    return obj


@pytest.mark.parametrize("name", ["checkout_id", "qr_url", "amount", "currency", "expires_at"])
def test_show_qr_missing_field(name: str) -> None:
    obj = show_qr_dict()
    del obj[name]
    with pytest.raises(InvalidValue) as caught:
        parse_display_command(encode(obj))
    assert caught.value.code == "missing_field"
    assert caught.value.field == name


def test_show_qr_unknown_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_display_command(encode(show_qr_dict(status="pending")))
    assert caught.value.code == "unknown_field"
    assert caught.value.field == "status"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("checkout_id", 1),
        ("qr_url", None),
        ("qr_url", "x" * 2049),
        ("amount", "1234"),
        ("amount", 12.34),
        ("amount", 1234.0),
        ("amount", True),
        ("currency", 978),
        ("expires_at", 1764000300000),
        ("order_id", 42),
    ],
)
def test_show_qr_wrong_types(name: str, value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_display_command(encode(show_qr_dict(**{name: value})))
    assert caught.value.code == "invalid_type"
    assert caught.value.field == name


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("checkout_id", "co/1", "invalid_checkout_id"),
        ("qr_url", "", "invalid_qr_url"),
        ("amount", 0, "invalid_amount"),
        ("amount", -1, "invalid_amount"),
        ("currency", "eur", "invalid_currency"),
        ("currency", "XXX", "invalid_currency"),
        ("expires_at", "soon", "invalid_timestamp"),
        ("order_id", "order#42", "invalid_order_id"),
    ],
)
def test_show_qr_bad_values(name: str, value: object, code: str) -> None:
    assert code_of(parse_display_command, encode(show_qr_dict(**{name: value}))) == code


@pytest.mark.parametrize("raw", [b"", b"{", b"idle", b"\xff", b"HTTPS://PAY.EXAMPLE.COM/Q/ABC"])
def test_display_command_malformed_json(raw: bytes) -> None:
    assert code_of(parse_display_command, raw) == "invalid_json"


@pytest.mark.parametrize("raw", [b"[]", b'["idle"]', b"null", b'"idle"', b"3"])
def test_display_command_non_object_json(raw: bytes) -> None:
    assert code_of(parse_display_command, raw) == "invalid_json"


# Terminal state.


@pytest.mark.parametrize(
    "state",
    [
        TerminalState(True, "qr", "co_1", "2025-11-24T16:00:01.250Z"),
        TerminalState(True, "idle", None, None),
        TerminalState(True, "paid", "co_1", "2025-11-24T16:01:13.000Z"),
        TerminalState(True, "cancelled", "co_1", "2025-11-24T16:01:13.000Z"),
        TerminalState(True, "expired", "co_1", "2025-11-24T16:05:00.100Z"),
        TerminalState(True, "error", None, "2025-11-24T16:00:00.000Z"),
        TerminalState(False, "offline", None, None),
    ],
)
def test_terminal_state_round_trips(state: TerminalState) -> None:
    raw = state.to_json()
    assert TerminalState.from_json(raw) == state
    assert TerminalState.from_json(raw.decode()) == state
    assert TerminalState.from_json(raw).to_json() == raw


def test_terminal_state_exact_bytes() -> None:
    assert TerminalState(True, "qr", "co_1", "2025-11-24T16:00:01.250Z").to_json() == (
        b'{"checkout_id":"co_1","displayed_at":"2025-11-24T16:00:01.250Z",'
        b'"online":true,"screen":"qr"}'
    )
    assert TerminalState(False, "offline", None, None).to_json() == (
        b'{"checkout_id":null,"displayed_at":null,"online":false,"screen":"offline"}'
    )


def test_terminal_state_byte_identical_for_equal_objects() -> None:
    one = TerminalState(True, "paid", "co_1", "2025-11-24T16:01:13.000Z")
    two = TerminalState(True, "paid", "co_1", "2025-11-24T16:01:13.000Z")
    assert one.to_json() == two.to_json()


STATE = {
    "online": True,
    "screen": "qr",
    "checkout_id": "co_1",
    "displayed_at": "2025-11-24T16:00:01.250Z",
}


def test_terminal_state_unknown_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        TerminalState.from_json(encode({**STATE, "battery": 90}))
    assert caught.value.code == "unknown_field"
    assert caught.value.field == "battery"


@pytest.mark.parametrize("name", ["online", "screen", "checkout_id", "displayed_at"])
def test_terminal_state_missing_field(name: str) -> None:
    obj = dict(STATE)
    del obj[name]
    with pytest.raises(InvalidValue) as caught:
        TerminalState.from_json(encode(obj))
    assert caught.value.code == "missing_field"
    assert caught.value.field == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("online", "true"),
        ("online", 1),
        ("online", None),
        ("screen", 1),
        ("screen", None),
        ("checkout_id", 1),
        ("displayed_at", 1764000001250),
    ],
)
def test_terminal_state_wrong_types(name: str, value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        TerminalState.from_json(encode({**STATE, name: value}))
    assert caught.value.code == "invalid_type"
    assert caught.value.field == name


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("screen", "pending", "invalid_screen"),
        ("screen", "QR", "invalid_screen"),
        ("checkout_id", "co 1", "invalid_checkout_id"),
        ("displayed_at", "now", "invalid_timestamp"),
    ],
)
def test_terminal_state_bad_values(name: str, value: object, code: str) -> None:
    assert code_of(TerminalState.from_json, encode({**STATE, name: value})) == code


@pytest.mark.parametrize("raw", [b"", b"offline", b"{", b"[]", b"null", b"true"])
def test_terminal_state_malformed_or_non_object(raw: bytes) -> None:
    assert code_of(TerminalState.from_json, raw) == "invalid_json"


# Signed fields (docs/signing.md): carried as objects, verified elsewhere.

SIGNATURE = {"alg": "Ed25519", "kid": "k_x_V9sKKvncY64cA8", "sig": "A" * 86}


def test_event_signature_round_trips_and_is_optional() -> None:
    signed = event(signature=SIGNATURE)
    raw = signed.to_json()
    assert json.loads(raw)["signature"] == SIGNATURE
    assert CheckoutEvent.from_json(raw) == signed
    assert "signature" not in json.loads(event().to_json())
    assert code_of(CheckoutEvent.from_json, encode(event_dict(signature="sig"))) == "invalid_type"


def test_show_qr_carries_a_display_ticket() -> None:
    ticket = {"checkout_id": SHOW_QR.checkout_id, "signature": SIGNATURE}
    command = replace(SHOW_QR, display_ticket=ticket)
    raw = display_command_to_json(command)
    assert json.loads(raw)["display_ticket"] == ticket
    assert parse_display_command(raw) == command
    assert "display_ticket" not in json.loads(display_command_to_json(SHOW_QR))
    obj = {**json.loads(raw), "display_ticket": [1]}
    assert code_of(parse_display_command, encode(obj)) == "invalid_type"


def test_display_ticket_is_strict() -> None:
    from scan2pay_common.messages import DisplayTicket

    fields = {
        "checkout_id": "co_1",
        "merchant_id": "mer_1",
        "qr_url": SHOW_QR.qr_url,
        "amount": 1234,
        "currency": "EUR",
        "terminal_id": "till-1",
        "expires_at": SHOW_QR.expires_at,
        "signature": SIGNATURE,
    }
    assert DisplayTicket.from_dict(fields).to_dict() == fields
    assert code_of(DisplayTicket.from_dict, {**fields, "extra": 1}) == "unknown_field"
    # A ticket names its merchant: terminal ids are unique only within one.
    without_merchant = {k: v for k, v in fields.items() if k != "merchant_id"}
    assert code_of(DisplayTicket.from_dict, without_merchant) == "missing_field"
    assert code_of(DisplayTicket.from_dict, {**fields, "merchant_id": None}) == (
        "invalid_merchant_id"
    )
    assert code_of(DisplayTicket.from_dict, {**fields, "merchant_id": "mer/1"}) == (
        "invalid_merchant_id"
    )
    assert code_of(DisplayTicket.from_dict, {**fields, "amount": 0}) == "invalid_amount"
    assert code_of(DisplayTicket.from_dict, "ticket") == "invalid_type"


def test_show_qr_carries_an_emv_payload_that_carries_its_url() -> None:
    from scan2pay_common import emv
    from scan2pay_common.messages import ShowQr, display_command_to_json, parse_display_command

    url = "HTTPS://PAY.EXAMPLE/Q/" + "X" * 32
    merchant = emv.MerchantInfo("Shop", "5814", "DE", "Berlin")
    payload = emv.dynamic_payload(url, merchant, amount=1234, currency="EUR")
    command = ShowQr("co_1", url, 1234, "EUR", "2025-11-24T16:05:00.000Z", qr_payload=payload)
    assert command.encoded == payload
    assert parse_display_command(display_command_to_json(command)) == command
    plain = ShowQr("co_1", url, 1234, "EUR", "2025-11-24T16:05:00.000Z")
    assert plain.encoded == url
    assert "qr_payload" not in plain.to_dict()
    elsewhere = emv.dynamic_payload(
        "HTTPS://EVIL.EXAMPLE/Q/" + "X" * 32, merchant, amount=1234, currency="EUR"
    )
    for bad, reason in (
        (elsewhere, "must carry qr_url"),
        (payload[:-1] + ("0" if payload[-1] != "0" else "1"), "CRC mismatch"),
        ("not a payload", "starts with 000201"),
    ):
        with pytest.raises(InvalidValue, match=reason):
            ShowQr("co_1", url, 1234, "EUR", "2025-11-24T16:05:00.000Z", qr_payload=bad)
        raw = {**plain.to_dict(), "qr_payload": bad}
        with pytest.raises(InvalidValue, match=reason):
            parse_display_command(json.dumps(raw))


STICKER = "sc_019ab52e4f1c9f8e7d6c5b4a3928"


def test_a_static_checkout_says_so_and_names_its_printed_code() -> None:
    static = snapshot(source="static", static_code_id=STICKER)
    written = static.to_dict()
    assert (written["source"], written["static_code_id"]) == ("static", STICKER)
    assert CheckoutSnapshot.from_dict(written) == static
    # Every other checkout is written as before: no new fields for old readers.
    plain = snapshot().to_dict()
    assert "source" not in plain
    assert "static_code_id" not in plain
    assert CheckoutSnapshot.from_dict({**plain, "source": "dynamic"}) == snapshot()


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "static"},
        {"static_code_id": STICKER},
        {"source": "printed", "static_code_id": STICKER},
        {"source": "static", "static_code_id": "sc_1"},
        {"source": "dynamic", "static_code_id": STICKER},
    ],
)
def test_a_source_that_does_not_hold_together_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue) as raised:
        snapshot(**changes)
    assert raised.value.code in ("invalid_source", "invalid_static_code_id")


def test_a_created_event_carries_a_pending_typed_checkout_and_nothing_else() -> None:
    typed = snapshot(status="pending", source="static", static_code_id=STICKER)
    created = event(type="checkout.created", checkout=typed)
    assert CheckoutEvent.from_json(created.to_json()) == created
    # A cashier's checkout is never announced as created; a typed one is
    # created pending, not paid.
    for wrong in (snapshot(status="pending"), snapshot(source="static", static_code_id=STICKER)):
        with pytest.raises(InvalidValue) as raised:
            event(type="checkout.created", checkout=wrong)
        assert raised.value.code == "invalid_event_type"
