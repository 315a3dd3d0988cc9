"""The merchant's web session: a signed cookie, and nothing kept on the server.

The cookie holds the merchant's id, when it was issued, a random nonce
(two sign-ins in the same millisecond are two sessions, with two CSRF
tokens), and a fingerprint
of the merchant's API key hash as it was then, MACed with HMAC-SHA256 under
a key derived (HKDF) from the PSP's signing key. Every worker of a
multi-process PSP loads the same signing key from the database, so any of
them accepts a session any other issued. A session ends after
``SESSION_MS``, at sign-out (the browser forgets the cookie), and as soon as
the merchant's API key is rotated or revoked: the fingerprint no longer
matches the key hash in the database.

CSRF: the sign-in form is a signed double submit (a random cookie, and
its HMAC in a hidden field); once signed in, each state-changing request
carries ``csrf_token(session)``, an HMAC of the session cookie that only
the server can make and only a page of the PSP can read. A request with an
``Origin`` header must come from the PSP's own origin besides.

Pure logic, no I/O: the aiohttp glue (the key's life in the app, cookie
names and flags, the origin check) is ``merchant_session``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from psp_server.core.credentials import secret_bytes
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id

INFO = b"scan2pay merchant session v1"
VERSION = "s2"
SESSION_MS = 12 * 3600 * 1000
# A cookie issued by a worker whose clock runs a little ahead is still good.
CLOCK_SLACK_MS = 60_000
_FINGERPRINT_BYTES = 12
_NONCE_BYTES = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Session:
    merchant_id: str
    issued_at: int  # ms
    key_fingerprint: str
    cookie: str  # the whole value: the CSRF token is bound to it


def hkdf_sha256(secret: bytes, info: bytes) -> bytes:
    """RFC 5869's HKDF with SHA-256, no salt, 32 bytes out: an extract and
    one expand block, two HMACs. The standard library's ``hmac`` does it,
    where a crypto package for this alone would be some 16 MB on every PSP
    (tests/psp_server/web/test_merchant_session.py holds it to RFC 5869's vector)."""
    prk = hmac.new(bytes(hashlib.sha256().digest_size), secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


class SessionKeys:
    """The MAC key, and everything made or checked with it."""

    def __init__(self, secret: bytes) -> None:
        self._key = hkdf_sha256(secret, INFO)

    def _mac(self, purpose: bytes, message: str) -> str:
        return _b64(
            hmac.new(self._key, purpose + b"\x00" + secret_bytes(message), hashlib.sha256).digest()
        )

    def fingerprint(self, key_hash: str, epoch: int) -> str:
        """Names the key and the merchant's session epoch without giving
        away the key's hash, which the cookie would otherwise carry to the
        browser."""
        bound = secret_bytes(f"{key_hash}.{epoch}")
        digest = hmac.new(self._key, b"key\x00" + bound, hashlib.sha256).digest()
        return _b64(digest[:_FINGERPRINT_BYTES])

    def issue(self, merchant_id: str, key_hash: str, epoch: int, *, now: int) -> str:
        nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
        body = f"{VERSION}.{merchant_id}.{now}.{nonce}.{self.fingerprint(key_hash, epoch)}"
        return f"{body}.{self._mac(b'session', body)}"

    def verify(self, cookie: str, *, now: int) -> Session | None:
        """The session ``cookie`` holds if this PSP made it and it has not
        run out; the key it was bound to is the caller's to check."""
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(secret_bytes(mac), self._mac(b"session", body).encode()):
            return None
        parts = body.split(".")
        if len(parts) != 5 or parts[0] != VERSION or not parts[2].isdigit():
            return None
        _, merchant_id, issued, _nonce, fingerprint = parts
        try:
            check_merchant_id(merchant_id)
        except InvalidValue:
            return None
        issued_at = int(issued)
        if not now - SESSION_MS < issued_at <= now + CLOCK_SLACK_MS:
            return None
        return Session(merchant_id, issued_at, fingerprint, cookie)

    def bound_to(self, session: Session, key_hash: str, epoch: int) -> bool:
        """Whether the merchant's key and session epoch are still the ones
        the session was made with."""
        return hmac.compare_digest(session.key_fingerprint, self.fingerprint(key_hash, epoch))

    def csrf_token(self, session: Session) -> str:
        return self._mac(b"csrf", session.cookie)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(
            secret_bytes(token), self.csrf_token(session).encode()
        )

    def form_field(self, form_cookie: str) -> str:
        """The sign-in form's hidden field for its cookie. Signed, not the
        cookie's copy: whoever can plant a cookie for this host (a sibling
        subdomain, over plain HTTP) still cannot make a pair that matches."""
        return self._mac(b"signin", form_cookie)

    def form_ok(self, form_cookie: str | None, field: str | None) -> bool:
        if not form_cookie or not field:
            return False
        return hmac.compare_digest(secret_bytes(field), self.form_field(form_cookie).encode())


def new_form_cookie() -> str:
    """The sign-in form's double-submit secret."""
    return secrets.token_urlsafe(32)
