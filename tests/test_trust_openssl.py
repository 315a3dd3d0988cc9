"""The terminal's Ed25519 checks through this Python's libcrypto
(terminal/trust.py) agree with the cryptography package's, case by case,
and fall back to it when that libcrypto cannot be used."""

from __future__ import annotations

import os
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scan2pay_common.signing import PublicKey, SigningKey, verify
from terminal import trust


@pytest.fixture
def backend() -> trust._OpenSslEd25519:
    found = trust._openssl()
    assert found is not None, "this Python's libcrypto should pass RFC 8032's test here"
    return found


def _cryptography_says(raw_key: bytes, signature: bytes, message: bytes) -> bool:
    return PublicKey(raw_key).check(signature, message)


def _openssl_says(backend: trust._OpenSslEd25519, raw_key: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        key = backend.public_key(raw_key)
    except ValueError:
        return False
    try:
        return backend.check(key, sig, msg)
    finally:
        backend.free_key(key)


def test_agrees_with_cryptography_on_genuine_and_tampered_signatures(
    backend: trust._OpenSslEd25519,
) -> None:
    rng = random.Random(7)  # noqa: S311 - seeded test data, nothing secret
    for _ in range(300):
        private = Ed25519PrivateKey.generate()
        raw_key = private.public_key().public_bytes_raw()
        message = rng.randbytes(rng.randrange(0, 300))
        signature = private.sign(message)
        cases = [(raw_key, signature, message)]
        flipped = bytearray(signature)
        flipped[rng.randrange(64)] ^= 1 << rng.randrange(8)
        cases.append((raw_key, bytes(flipped), message))
        cases.append((raw_key, signature, message + b"x"))
        cases.append((raw_key, signature[:63], message))  # a short signature
        cases.append((os.urandom(32), signature, message))  # another (maybe invalid) key
        for case in cases:
            assert _openssl_says(backend, *case) == _cryptography_says(*case), case


def test_a_signed_ticket_verifies_and_a_changed_one_does_not() -> None:
    signer = SigningKey.generate()
    signed = signer.sign({"checkout_id": "co_1", "amount": 1250})
    keys = trust._verifying([signer.public])
    assert all(isinstance(k, trust._OpenSslKey) for k in keys)
    assert verify(signed, keys)
    assert not verify({**signed, "amount": 1251}, keys)
    assert not verify(signed, trust._verifying([SigningKey.generate().public]))


def test_without_a_usable_libcrypto_cryptography_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "_openssl", lambda: None)
    trust._openssl_key.cache_clear()
    try:
        signer = SigningKey.generate()
        keys = trust._verifying([signer.public])
        assert keys == (signer.public,)
        assert not isinstance(keys[0], trust._OpenSslKey)
        assert verify(signer.sign({"a": 1}), keys)
        assert not verify({**signer.sign({"a": 1}), "a": 2}, keys)
    finally:
        trust._openssl_key.cache_clear()


def test_a_libcrypto_that_fails_the_self_test_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    trust._openssl.cache_clear()
    monkeypatch.setattr(trust._OpenSslEd25519, "check", lambda self, key, sig, msg: True)
    try:
        assert trust._openssl() is None  # it accepted RFC 8032's signature for another message
    finally:
        trust._openssl.cache_clear()
