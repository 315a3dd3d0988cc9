"""scan2pay_common.signing, pure: what is signed, what verifies, and that no
input, however broken, makes verify raise."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.signing import (
    PublicKey,
    SigningKey,
    b64url,
    canonical_bytes,
    parse_public_keys,
    verify,
    verify_json,
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


def test_libsodiums_signature_is_the_one_cryptography_makes() -> None:
    """The PSP signs with PyNaCl; Ed25519 is deterministic, so for the same
    key and bytes every implementation gives the same signature."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from scan2pay_common.signing import canonical_bytes

    for n in range(20):
        key = SigningKey.generate()
        obj = {"checkout_id": f"co_{n}", "amount": n * 1000 + 1, "note": "é€" * n}
        reference = Ed25519PrivateKey.from_private_bytes(key.private_bytes())
        expected = reference.sign(canonical_bytes(obj))
        assert key.signature(obj)["sig"] == b64url(expected)
        assert key.public.raw == reference.public_key().public_bytes_raw()
