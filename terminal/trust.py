"""What the terminal believes: pure checks, no I/O (docs/signing.md).

A terminal holds the PSP's public key(s) (``Identity.keys``; production
terminals must) or believes its topics unchecked, as before signing. With a
key:

- A QR is shown only from a ``show_qr`` with a display ticket the PSP
  signed for this terminal of this merchant (terminal ids are unique only
  within a merchant), not expired, whose checkout, URL, amount, currency
  and expiry are the command's. Anyone who can publish on the display topic
  can send a command; only the PSP can make a ticket. A bare QR URL has no
  ticket: it is bound to no merchant and no terminal, and is never shown.
- An outcome ("Paid" above all) is shown only for the checkout on screen,
  and only on evidence bound to this merchant and terminal: an event the
  PSP signed that names both, or the PSP's own answer about that very
  checkout, naming this merchant. A cashier's ``status`` is unsigned: its
  ``cancelled`` and ``expired`` are believed (they let no goods leave), its
  ``paid`` is only a reason to ask the PSP.

Without a key the terminal believes its display topic, as before signing
(a cashier's ``status`` shows for whatever checkout it names, so that a
terminal restarted after the sale still shows its outcome); events and the
PSP's answers still count only for the checkout on screen and this merchant.

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
from dataclasses import dataclass
from typing import Any

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent, DisplayTicket, ShowQr, ShowStatus
from scan2pay_common.signing import PublicKey, verify, verify_json
from scan2pay_common.timefmt import from_rfc3339

from .controller import BareUrl, CodeInfo
from .screens import IdleScreen, OutcomeScreen, QrScreen, Screen

log = logging.getLogger(__name__)

_MUST_MATCH = ("checkout_id", "qr_url", "amount", "currency", "expires_at")


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose terminal this is, and the PSP's keys it believes (none: it
    believes its topics unchecked)."""

    merchant_id: str
    terminal_id: str
    keys: tuple[PublicKey, ...] = ()


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """A PSP event as it arrived: its signature covers the payload's JSON."""

    payload: bytes
    event: CheckoutEvent


# What may change the outcome of the checkout on screen: a PSP event, the
# PSP's answer to GET /Q/{CODE}, or a cashier's status command.
Evidence = SignedEvent | CodeInfo | ShowStatus


def qr_problem(command: ShowQr | BareUrl, me: Identity, now: int) -> str | None:
    """Whether a QR may be shown: with keys, only from a display ticket for
    this merchant and terminal; never from a bare URL."""
    if not me.keys:
        return None
    if isinstance(command, BareUrl):
        return "a bare QR URL has no display ticket: it is bound to no merchant or terminal"
    return ticket_problem(command, me.keys, me.merchant_id, me.terminal_id, now)


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


def outcome_problem(evidence: Evidence, screen: Screen, me: Identity) -> str | None:
    """Whether ``evidence`` may move the checkout on ``screen`` to an
    outcome: "Paid" above all, but also cancelled, expired or refunded.

    - Only the checkout on screen: evidence about any other, or with
      nothing on screen, changes nothing.
    - An event: it is this merchant's; with keys, the PSP signed it and its
      checkout was made for this terminal.
    - The PSP's answer about a code: it names this merchant and the checkout
      on screen. Without keys a bare URL's QR is on screen with no checkout
      id, and the answer about that very URL is what names its checkout.
    - A cashier's status: with keys, ``paid`` is unsigned and so no
      evidence (``Controller.on_paid_hint`` makes it a question to the PSP
      about the QR on screen). Without keys it is believed, whichever
      checkout it names.
    """
    if isinstance(evidence, ShowStatus) and not me.keys:
        return None
    if isinstance(screen, IdleScreen):
        return "no checkout is on screen"
    if isinstance(evidence, CodeInfo):
        return _answer_problem(evidence, screen, me)
    about = (
        evidence.event.checkout.id if isinstance(evidence, SignedEvent) else evidence.checkout_id
    )
    if about != screen.checkout_id:
        return f"it is about {about}, not the checkout on screen"
    if isinstance(evidence, SignedEvent):
        return _event_problem(evidence, me)
    if me.keys and evidence.status == "paid":
        return "a cashier's paid is unsigned: only the PSP's word shows paid"
    return None


def _event_problem(evidence: SignedEvent, me: Identity) -> str | None:
    event = evidence.event
    if event.merchant_id != me.merchant_id:
        return f"it is merchant {event.merchant_id}'s"
    if not me.keys:
        return None
    if not verify_json(evidence.payload, _verifying(me.keys)):
        return "its signature is missing or not the PSP's"
    if event.checkout.terminal_id != me.terminal_id:
        return f"its checkout is for terminal {event.checkout.terminal_id!r}"
    return None


def _answer_problem(info: CodeInfo, screen: QrScreen | OutcomeScreen, me: Identity) -> str | None:
    if info.merchant_id != me.merchant_id:
        if info.merchant_id is None:
            return "it names no merchant"
        return f"it is merchant {info.merchant_id}'s"
    if screen.checkout_id is None:
        # A bare URL's QR, which only a terminal without keys shows.
        if me.keys:
            return "no checkout of a display ticket is on screen"
        if not isinstance(screen, QrScreen) or screen.qr_url != info.url:
            return "it is about another QR than the one on screen"
        return None
    if info.checkout_id != screen.checkout_id:
        return f"it is about {info.checkout_id}, not the checkout on screen"
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
