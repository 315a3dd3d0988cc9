"""What the terminal believes when it holds the PSP's public key(s): pure
checks, no I/O (docs/signing.md).

- A ``show_qr`` is shown only with a display ticket the PSP signed for
  this terminal of this merchant (terminal ids are unique only within a
  merchant), not expired, whose checkout, URL, amount, currency and expiry
  are the command's. Anyone who can publish on the display topic can send
  a command; only the PSP can make a ticket.
- An event counts only if the PSP signed it and it is this merchant's.

Each check answers None when all is well, or why not (for the log).

The Ed25519 checks themselves are OpenSSL's, the libcrypto that Python's
own ``ssl`` and ``hashlib`` are linked against and that the daemon has
loaded anyway (``_OpenSslEd25519``). The ``cryptography`` package does the
same with a copy of OpenSSL of its own, which would cost the terminal some
7 MB of its Pi Zero's 512 MB. It is still the fallback: where this Python's
libcrypto cannot be reached or fails its self-test, ``PublicKey.check``
verifies as everywhere else. The signed envelope (``alg``, ``kid``, the
canonical bytes) is checked by ``scan2pay_common.signing.verify`` either way.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent, DisplayTicket, ShowQr
from scan2pay_common.signing import PublicKey, verify, verify_json
from scan2pay_common.timefmt import from_rfc3339

log = logging.getLogger(__name__)

_MUST_MATCH = ("checkout_id", "qr_url", "amount", "currency", "expires_at")


def ticket_problem(
    command: ShowQr, keys: Sequence[PublicKey], merchant_id: str, terminal_id: str, now: int
) -> str | None:
    raw = command.display_ticket
    if raw is None:
        return "it has no display ticket"
    if not verify(raw, _verifying(keys)):
        return "its display ticket is not signed by the PSP"
    try:
        ticket = DisplayTicket.from_dict(raw)
    except InvalidValue as exc:
        return f"its display ticket is off-contract: {exc.message}"
    if ticket.merchant_id != merchant_id:
        return f"its display ticket is merchant {ticket.merchant_id}'s"
    if ticket.terminal_id != terminal_id:
        return f"its display ticket is for terminal {ticket.terminal_id!r}"
    if now >= from_rfc3339(ticket.expires_at):
        return "its display ticket has expired"
    for name in _MUST_MATCH:
        if getattr(ticket, name) != getattr(command, name):
            return f"its {name} is not the display ticket's"
    return None


def event_problem(
    payload: bytes, event: CheckoutEvent, keys: Sequence[PublicKey], merchant_id: str
) -> str | None:
    if event.merchant_id != merchant_id:
        return f"it is merchant {event.merchant_id}'s"
    if not verify_json(payload, _verifying(keys)):
        return "its signature is missing or not the PSP's"
    return None


def _verifying(keys: Sequence[PublicKey]) -> tuple[PublicKey, ...]:
    """The keys, each checking with this Python's libcrypto where it can."""
    return tuple(_openssl_key(key) for key in keys)


# Ed25519 by this Python's libcrypto.

_EVP_PKEY_ED25519 = 1087  # NID_ED25519, the same in OpenSSL 1.1.1 and 3.x

# RFC 8032, 7.1, TEST 2: a public key, a one-byte message and its signature.
_RFC8032_KEY = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
_RFC8032_MESSAGE = b"\x72"
_RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


class _OpenSslEd25519:
    """EVP_DigestVerify with an Ed25519 key, through ctypes. Only a return
    of 1 is a valid signature. Each call clears OpenSSL's error queue after
    itself, so that nothing a failed check leaves there reaches the ``ssl``
    module's error reports."""

    def __init__(self, lib: Any) -> None:
        import ctypes

        ptr, size, data, c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int
        self._new_key = _bind(lib.EVP_PKEY_new_raw_public_key, ptr, c_int, ptr, data, size)
        self.free_key = _bind(lib.EVP_PKEY_free, None, ptr)
        self._new_context = _bind(lib.EVP_MD_CTX_new, ptr)
        self._free_context = _bind(lib.EVP_MD_CTX_free, None, ptr)
        self._init = _bind(lib.EVP_DigestVerifyInit, c_int, ptr, ptr, ptr, ptr, ptr)
        self._verify = _bind(lib.EVP_DigestVerify, c_int, ptr, data, size, data, size)
        self._clear_errors = _bind(lib.ERR_clear_error, None)

    def public_key(self, raw: bytes) -> int:
        """An EVP_PKEY of the key's 32 bytes; give it back with ``free_key``."""
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        try:
            key = self._new_key(_EVP_PKEY_ED25519, None, raw, len(raw))
        finally:
            self._clear_errors()
        if not key:
            raise ValueError("OpenSSL refused the Ed25519 public key")
        return int(key)

    def check(self, key: int, signature: bytes, message: bytes) -> bool:
        context = self._new_context()
        if not context:
            raise MemoryError("OpenSSL could not make a digest context")
        try:
            if self._init(context, None, None, None, key) != 1:
                return False
            verified: int = self._verify(context, signature, len(signature), message, len(message))
            return verified == 1
        finally:
            self._free_context(context)
            self._clear_errors()


def _bind(function: Any, restype: Any, *argtypes: Any) -> Any:
    function.restype = restype
    function.argtypes = list(argtypes)
    return function


@functools.cache
def _openssl() -> _OpenSslEd25519 | None:
    """The libcrypto that this Python's ``_hashlib`` is linked against, if
    it verifies RFC 8032's test signature and refuses it for another
    message; None otherwise (``PublicKey.check`` then verifies)."""
    try:
        import ctypes
        import importlib

        backend = _OpenSslEd25519(ctypes.CDLL(importlib.import_module("_hashlib").__file__))
        key = backend.public_key(_RFC8032_KEY)
        try:
            genuine = backend.check(key, _RFC8032_SIGNATURE, _RFC8032_MESSAGE)
            forged = backend.check(key, _RFC8032_SIGNATURE, b"\x73")
        finally:
            backend.free_key(key)
    except (ImportError, OSError, AttributeError, ValueError, MemoryError) as exc:
        log.info("Ed25519 by the cryptography package: no libcrypto to use (%s)", exc)
        return None
    if not genuine or forged:
        log.warning("Ed25519 by the cryptography package: libcrypto failed RFC 8032's test")
        return None
    return backend


class _OpenSslKey(PublicKey):
    """A PSP key whose ``check`` is this Python's libcrypto's."""

    _backend: _OpenSslEd25519
    _evp_key: int

    def __init__(self, key: PublicKey, backend: _OpenSslEd25519) -> None:
        super().__init__(key.raw)
        evp_key = backend.public_key(key.raw)
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_evp_key", evp_key)
        weakref.finalize(self, backend.free_key, evp_key)

    def check(self, signature: bytes, message: bytes) -> bool:
        return self._backend.check(self._evp_key, signature, message)


@functools.lru_cache(maxsize=8)
def _openssl_key(key: PublicKey) -> PublicKey:
    backend = _openssl()
    if backend is None:
        return key
    try:
        return _OpenSslKey(key, backend)
    except ValueError as exc:
        log.warning("Ed25519 by the cryptography package for %s: %s", key.kid, exc)
        return key
