"""scan2pay_common.signing, pure: what is signed, what verifies, and that no
input, however broken, makes verify raise."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.jsonfields import dumps
from scan2pay_common.signing import (
    PublicKey,
    SigningKey,
    b64url,
    canonical_bytes,
    parse_public_keys,
    unb64url,
    verify,
    verify_json,
    verify_received,
)

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))

TICKET: dict[str, Any] = {
    "checkout_id": "co_3f9a1c0e5b7d2a4c6e8f",
    "qr_url": "HTTPS://PAY.EXAMPLE.COM/Q/U4WAXRWE54FNV7BAB2TOOWSIZRZEKWZZ",
    "amount": 1234,
    "currency": "EUR",
    "terminal_id": "till-1",
    "expires_at": "2025-11-24T16:05:00.123Z",
}

EVENT: dict[str, Any] = {
    "event_id": "evt_1",
    "seq": 7,
    "type": "checkout.paid",
    "merchant_id": "mer_1",
    "checkout": {"id": "co_1", "description": "Café ☕", "terminal_id": None, "amount": 5},
    "created_at": "2025-11-24T16:00:00.123Z",
}


def test_sign_then_verify() -> None:
    for obj in (TICKET, EVENT):
        signed = KEY.sign(obj)
        assert signed["signature"]["alg"] == "Ed25519"
        assert signed["signature"]["kid"] == KEY.kid
        assert len(signed["signature"]["sig"]) == 86
        assert verify(signed, [KEY.public])
        assert verify(signed, [OTHER.public, KEY.public])  # a rotation's list
        assert verify_json(json.dumps(signed), [KEY.public])
        assert obj == {k: v for k, v in signed.items() if k != "signature"}


def test_canonical_bytes_are_stable() -> None:
    reordered = dict(reversed(list(EVENT.items())))
    assert canonical_bytes(reordered) == canonical_bytes(EVENT)
    assert canonical_bytes(KEY.sign(EVENT)) == canonical_bytes(EVENT)
    text = canonical_bytes(EVENT).decode()
    assert " " not in text.replace("Café ☕", "")
    assert "Café ☕" in text  # not \\u-escaped
    assert text.startswith('{"checkout":{"amount":5,')
    # Ed25519 is deterministic: the same object and key, the same signature.
    assert KEY.sign(EVENT) == KEY.sign(reordered)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        found = []
        for key, value in obj.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
        return found
    return []


def _changed(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return {"x": 1}


@pytest.mark.parametrize("original", [TICKET, EVENT], ids=["ticket", "event"])
def test_tampering_with_any_field_fails(original: dict[str, Any]) -> None:
    signed = KEY.sign(original)
    for path in _paths(original):
        tampered = copy.deepcopy(signed)
        node = tampered
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(node[path[-1]])
        assert not verify(tampered, [KEY.public]), path
        removed = copy.deepcopy(signed)
        node = removed
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        assert not verify(removed, [KEY.public]), path
    added = {**signed, "extra": 1}
    assert not verify(added, [KEY.public])


def test_tampering_with_the_signature_fails() -> None:
    signed = KEY.sign(TICKET)
    sig = signed["signature"]
    flipped = ("A" if sig["sig"][0] != "A" else "B") + sig["sig"][1:]
    for bad in (
        {**sig, "sig": flipped},
        {**sig, "alg": "HS256"},
        {**sig, "kid": OTHER.kid},
        {**sig, "extra": 1},
        {"alg": sig["alg"], "kid": sig["kid"]},
        None,
        "sig",
    ):
        assert not verify({**signed, "signature": bad}, [KEY.public]), bad


def test_wrong_key_fails() -> None:
    signed = KEY.sign(TICKET)
    assert not verify(signed, [OTHER.public])
    assert not verify(signed, [])
    # Another key's signature under this key's kid.
    forged = OTHER.sign(TICKET)
    forged["signature"]["kid"] = KEY.kid
    assert not verify(forged, [KEY.public])
    assert not verify(TICKET, [KEY.public])  # unsigned


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        1,
        "text",
        [],
        {},
        {"signature": {}},
        {"signature": {"alg": "Ed25519", "kid": 1, "sig": "x"}},
        {"signature": {"alg": "Ed25519", "kid": "k", "sig": 5}},
        {"signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "!" * 86}},
        {"signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86}},
        {"signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "é" * 86}},
        {"signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 85 + "="}},
        {"a": "\ud800", "signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86}},
        {"a": float("nan"), "signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86}},
        {"a": object(), "signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86}},
        {1: 2, "signature": {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86}},
    ],
)
def test_garbage_never_raises(garbage: Any) -> None:
    assert verify(garbage, [KEY.public]) is False


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe", b"not json", b"[" * 100_000, b"null", b'{"signature": 1}']
)
def test_garbage_json_never_raises(raw: bytes) -> None:
    assert verify_json(raw, [KEY.public]) is False


def test_public_key_text() -> None:
    text = KEY.public.text
    assert text.startswith("ed25519:")
    assert len(text) == len("ed25519:") + 43
    assert PublicKey.parse(text) == KEY.public
    assert PublicKey.parse(f"  {text}  ").kid == KEY.kid
    assert parse_public_keys(f"{text}, {OTHER.public.text}") == (KEY.public, OTHER.public)
    assert parse_public_keys([text, f"{OTHER.public.text},{text}"]) == (KEY.public, OTHER.public)
    for bad in (
        "",
        " , ",
        [],
        "ed25519:",
        "ed25519:" + "A" * 42,
        "ed25519:" + "A" * 44,
        "ed25519:" + b64url(bytes(31)),
        "rsa:" + text[8:],
        text + "=",
        ["ok", 5],
    ):
        with pytest.raises(InvalidValue):
            parse_public_keys(bad)


def test_signing_key_round_trip() -> None:
    made = SigningKey.generate()
    again = SigningKey(made.private_bytes())
    assert again.public == made.public
    assert again.kid == made.kid
    assert verify(made.sign(TICKET), [again.public])
    assert repr(made) == f"SigningKey(kid={made.kid!r})"  # never the private bytes


# RFC 8032, 7.1, TESTS 1 to 3: secret key, public key, message, signature.
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_keys_signatures_and_checks_are_rfc_8032s(
    secret: str, public: str, message: str, signature: str
) -> None:
    """Ed25519 is deterministic: for the same key and bytes every
    implementation gives the same signature, so RFC 8032's vectors pin the
    PSP's signatures and the verifiers' answers alike."""
    key = SigningKey(bytes.fromhex(secret))
    assert key.public.raw.hex() == public
    assert key._key.sign(bytes.fromhex(message)).signature.hex() == signature
    sig, msg = bytes.fromhex(signature), bytes.fromhex(message)
    assert key.public.check(sig, msg)
    assert not key.public.check(sig, msg + b"x")
    for bit in (0, 7, 255, 511):
        flipped = bytearray(sig)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not key.public.check(bytes(flipped), msg)
    assert not OTHER.public.check(sig, msg)


def test_a_signature_by_a_key_that_is_no_curve_point_fails() -> None:
    """Any 32 bytes parse as a public key; those that are no point on the
    curve (or a point of small order) verify nothing."""
    signed = KEY.sign(TICKET)
    message, sig = canonical_bytes(signed), unb64url(signed["signature"]["sig"])
    for raw in (bytes(32), b"\x01" + bytes(31), b"\xff" * 32):
        assert not PublicKey(raw).check(sig, message)


# verify_received: over the bytes as they arrived, the signature member cut out.


def _received(obj: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """What a reader has: the bytes the PSP published, and the object it read."""
    raw = dumps(KEY.sign(obj))
    return raw, json.loads(raw)


@pytest.mark.parametrize(
    "obj",
    [
        EVENT,  # the signature among the members
        {"a": 1},  # the signature last
        {"z": 1},  # the signature first
        {},  # the signature alone
    ],
)
def test_the_published_bytes_verify_as_received(obj: dict[str, Any]) -> None:
    raw, read = _received(obj)
    assert verify_received(raw, read["signature"], [KEY.public])
    assert verify_received(raw, read["signature"], [OTHER.public, KEY.public])
    assert not verify_received(raw, read["signature"], [OTHER.public])


def test_the_bytes_cut_are_the_signed_ones_and_nothing_is_serialised_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw, read = _received(EVENT)
    checked: list[bytes] = []
    check = PublicKey.check

    def spying(self: PublicKey, signature: bytes, message: bytes) -> bool:
        checked.append(message)
        return check(self, signature, message)

    monkeypatch.setattr(PublicKey, "check", spying)
    assert verify_received(raw, read["signature"], [KEY.public])
    assert checked == [canonical_bytes(EVENT)]


def test_bytes_in_another_form_do_not_verify_as_received() -> None:
    _, read = _received(EVENT)
    spaced = json.dumps(read, ensure_ascii=False).encode()
    assert verify_json(spaced, [KEY.public])  # the same object, re-serialised
    assert not verify_received(spaced, read["signature"], [KEY.public])
    reordered = json.dumps(dict(reversed(list(read.items()))), separators=(",", ":"))
    assert not verify_received(reordered.encode(), read["signature"], [KEY.public])


def test_changed_bytes_do_not_verify_as_received() -> None:
    raw, read = _received(EVENT)
    changed = raw.replace(b'"amount":5', b'"amount":6')
    assert not verify_received(changed, read["signature"], [KEY.public])


def test_a_signature_member_moved_or_copied_does_not_verify() -> None:
    raw, read = _received(EVENT)
    member = b'"signature":' + dumps(read["signature"])
    unsigned = raw.replace(member + b",", b"")
    into_checkout = b'{"checkout":{' + member + b","
    # Moved into the checkout: the event itself carries no signature.
    moved = unsigned.replace(b'{"checkout":{', into_checkout, 1)
    assert "signature" not in json.loads(moved)
    assert not verify_received(moved, json.loads(moved).get("signature"), [KEY.public])
    # Copied there as well: two members to cut.
    copied = raw.replace(b'{"checkout":{', into_checkout, 1)
    assert not verify_received(copied, json.loads(copied)["signature"], [KEY.public])
    # The event's own written with an escape, the exact one inside the
    # checkout: cutting that one leaves bytes the PSP never signed.
    escaped = moved.replace(
        b'"seq":7,', b'"seq":7,"sign\\u0061ture":' + dumps(read["signature"]) + b","
    )
    assert json.loads(escaped)["signature"] == read["signature"]
    assert not verify_received(escaped, read["signature"], [KEY.public])


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "sig",
        {},
        {"alg": "Ed25519", "kid": KEY.kid},
        {"alg": "RS256", "kid": KEY.kid, "sig": "A" * 86},
        {"alg": "Ed25519", "kid": KEY.kid, "sig": "A" * 86},  # not in the bytes
        {"alg": "Ed25519", "kid": KEY.kid, "sig": "\ud800"},
    ],
)
def test_a_bad_signature_field_never_raises_as_received(signature: Any) -> None:
    raw, _ = _received(EVENT)
    assert verify_received(raw, signature, [KEY.public]) is False
