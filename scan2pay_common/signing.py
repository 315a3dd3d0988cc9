"""Ed25519 signatures on the JSON objects the PSP vouches for: its events and
its display tickets (docs/signing.md).

The signature covers the object's canonical bytes without its ``signature``
field: JSON with sorted keys, compact separators, ``ensure_ascii=False``,
UTF-8 (``jsonfields.dumps``). It travels inside the object as

    "signature": {"alg": "Ed25519", "kid": "<key id>", "sig": "<base64url>"}

A public key is written ``ed25519:<base64url of its 32 bytes, no padding>``;
its key id is derived from it, so that a verifier holding several keys (a
rotation) knows which one to try. ``verify`` never raises: anything that is
not a valid signature by one of the keys is simply False.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidValue
from .jsonfields import dumps

ALG = "Ed25519"
PREFIX = "ed25519:"
SIGNATURE_FIELD = "signature"
SIGNATURE_FIELDS = frozenset({"alg", "kid", "sig"})

# PyNaCl (libsodium) is the project's one Ed25519 library: the PSP signs
# with it, terminals and cashier bridges verify with it. It has wheels for
# every machine a terminal runs on (docs/terminal.md, "Wheels"), and it is
# imported where it is first used, so that what only parses keys (configs,
# the CLIs) does not load it.
if TYPE_CHECKING:
    from nacl.signing import VerifyKey


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict: the URL-safe alphabet only, no padding; InvalidValue otherwise."""
    if not isinstance(text, str) or not text.isascii() or "=" in text or len(text) % 4 == 1:
        raise InvalidValue("invalid_base64", "not unpadded base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError:
        raise InvalidValue("invalid_base64", "not unpadded base64url") from None
    if b64url(raw) != text:  # non-canonical trailing bits
        raise InvalidValue("invalid_base64", "not canonical base64url")
    return raw


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """What is signed: ``obj`` without its signature, in canonical JSON."""
    return dumps({k: v for k, v in obj.items() if k != SIGNATURE_FIELD})


def key_id(public_raw: bytes) -> str:
    """A short id derived from the public key's 32 bytes."""
    return "k_" + b64url(hashlib.sha256(public_raw).digest()[:12])


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A key that verifies: ``ed25519:…`` text, its raw bytes and its id."""

    raw: bytes
    kid: str = field(init=False)
    _key: VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Any 32 bytes make a VerifyKey (it checks the length only; libsodium
        # refuses a key that is no curve point when it verifies), so the
        # length is the whole check here, and the key object is made when
        # the key first verifies.
        if len(self.raw) != 32:
            raise InvalidValue("invalid_key", "an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "kid", key_id(self.raw))

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """``ed25519:<43 base64url characters>``."""
        if not isinstance(text, str) or not text.strip().lower().startswith(PREFIX):
            raise InvalidValue("invalid_key", f"a public key is written {PREFIX}<base64url>")
        body = text.strip()[len(PREFIX) :]
        try:
            raw = unb64url(body)
        except InvalidValue:
            raise InvalidValue("invalid_key", f"{text!r} is not {PREFIX}<base64url>") from None
        return cls(raw)

    @property
    def text(self) -> str:
        return PREFIX + b64url(self.raw)

    def __repr__(self) -> str:
        return f"PublicKey({self.text!r})"

    def check(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` (64 bytes) is this key's on ``message``.
        A signature of another length raises ValueError."""
        from nacl.exceptions import BadSignatureError

        try:
            self._verifier().verify(message, signature)
        except BadSignatureError:
            return False
        return True

    def prepare(self) -> None:
        """Loads libsodium and makes the key object now, so that the first
        check (a terminal's first checkout) does not pay for them."""
        self._verifier()

    def _verifier(self) -> VerifyKey:
        try:
            return self._key
        except AttributeError:  # the first check
            from nacl.signing import VerifyKey

            key = VerifyKey(self.raw)
            object.__setattr__(self, "_key", key)
            return key


def parse_public_keys(value: object) -> tuple[PublicKey, ...]:
    """One key, several comma-separated, or a list of either (flags given
    several times, a TOML array). InvalidValue if one is bad or none given."""
    items = value if isinstance(value, list | tuple) else [value]
    keys: list[PublicKey] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidValue("invalid_key", "public keys are strings like ed25519:…")
        for part in item.split(","):
            if part.strip():
                key = PublicKey.parse(part)
                if key not in keys:
                    keys.append(key)
    if not keys:
        raise InvalidValue("invalid_key", "no public key given")
    return tuple(keys)


class SigningKey:
    """The PSP's private key. It signs with libsodium (PyNaCl): Ed25519 is
    deterministic, so the signature is the one any implementation makes
    (a test holds it to RFC 8032's vectors), and libsodium makes it in 20 us
    where OpenSSL took 32, on every checkout twice."""

    __slots__ = ("_key", "_raw", "public")

    def __init__(self, private_raw: bytes) -> None:
        from nacl.signing import SigningKey as NaclSigningKey

        if len(private_raw) != 32:
            raise InvalidValue("invalid_key", "an Ed25519 private key is 32 bytes")
        self._raw = bytes(private_raw)
        self._key = NaclSigningKey(self._raw)
        self.public = PublicKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))  # an Ed25519 private key is 32 random bytes (RFC 8032)

    @property
    def kid(self) -> str:
        return self.public.kid

    def private_bytes(self) -> bytes:
        return self._raw

    def signature(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The ``signature`` field for ``obj`` (any signature in it is ignored)."""
        signed = self._key.sign(canonical_bytes(obj)).signature
        return {"alg": ALG, "kid": self.kid, "sig": b64url(signed)}

    def sign(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """``obj`` with its ``signature`` field (a new dict)."""
        unsigned = {k: v for k, v in obj.items() if k != SIGNATURE_FIELD}
        return {**unsigned, SIGNATURE_FIELD: self.signature(unsigned)}

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


def verify(obj: object, public_keys: Iterable[PublicKey]) -> bool:
    """Whether ``obj`` carries a valid signature by one of ``public_keys``.
    Never raises, whatever ``obj`` is."""
    try:
        if not isinstance(obj, Mapping):
            return False
        return _checks(obj.get(SIGNATURE_FIELD), lambda: canonical_bytes(obj), public_keys)
    except (InvalidValue, ValueError, TypeError, RecursionError):
        return False


def verify_json(raw: bytes | str, public_keys: Iterable[PublicKey]) -> bool:
    """``verify`` of a JSON text as it arrived. Never raises."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return verify(obj, public_keys)


def verify_received(raw: bytes, signature: object, public_keys: Iterable[PublicKey]) -> bool:
    """Whether ``signature``, the ``signature`` field of the object read
    from ``raw``, is valid by one of ``public_keys`` over ``raw`` itself.

    What the PSP publishes is canonical: the signed bytes with the
    ``"signature":{…}`` member where its sorted key puts it. Cut out (with
    one of its commas), what is left is exactly what was signed, so the
    object is neither serialised nor parsed again; ``raw`` in another form
    (spaces, another key order) does not verify. The member must occur in
    ``raw`` once, byte for byte as canonical JSON writes it. Never raises."""
    try:
        if not isinstance(signature, Mapping):
            return False
        member = b'"signature":' + dumps(signature)
        at = raw.find(member)
        if at < 0 or raw.find(member, at + 1) >= 0:
            return False
        end = at + len(member)
        if raw[end : end + 1] == b",":
            signed = raw[:at] + raw[end + 1 :]
        elif raw[at - 1 : at] == b",":
            signed = raw[: at - 1] + raw[end:]
        else:
            signed = raw[:at] + raw[end:]  # the object's only member
        return _checks(signature, lambda: signed, public_keys)
    except (InvalidValue, ValueError, TypeError, RecursionError):
        return False


def _checks(
    signature: object, message: Callable[[], bytes], public_keys: Iterable[PublicKey]
) -> bool:
    """Whether ``signature`` is a well-formed signature field and one of
    ``public_keys``' on ``message()`` (made only for a well-formed one)."""
    if not isinstance(signature, Mapping) or set(signature) != SIGNATURE_FIELDS:
        return False
    alg, kid, sig = signature["alg"], signature["kid"], signature["sig"]
    if alg != ALG or not isinstance(kid, str) or not isinstance(sig, str) or len(sig) != 86:
        return False
    raw_sig = unb64url(sig)
    if len(raw_sig) != 64:
        return False
    signed = message()
    return any(key.kid == kid and key.check(raw_sig, signed) for key in public_keys)
