"""Webhook signatures: ``Scan2pay-Signature: t=TIMESTAMP,v1=SIGNATURE``.

SIGNATURE is the lower-case hex HMAC-SHA256, keyed with the endpoint's
secret, of ``TIMESTAMP + "." + BODY`` (the exact body bytes); TIMESTAMP is
the unix time in whole seconds when the request was signed. Signing the
timestamp with the body lets a receiver refuse a replayed old request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

HEADER = "Scan2pay-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every secret starts with, not a secret
DEFAULT_TOLERANCE = 300
# A longer header is refused unread: a real one is about 80 characters, a
# few hundred while a secret is being rolled.
MAX_HEADER = 4096
# 1 to 12 ASCII digits: unix seconds until the year 33658. str.isdigit and
# int() take other scripts' digits too; int() refuses more than 4300 digits
# (ValueError), and a number of 310 digits overflows a float, which the
# comparison with the clock makes of it (OverflowError).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def new_secret() -> str:
    """``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` with ``secret``,
    made at most ``tolerance`` seconds from ``now`` (default: the clock).

    Any ``v1`` entry may match (a header may carry several); entries of
    other schemes are ignored. The comparison takes constant time. Never
    raises for what the header holds: a header longer than ``MAX_HEADER``,
    a part without ``=``, more than one ``t`` or a ``t`` that is not 1 to 12
    ASCII digits is refused.
    """
    if not isinstance(header, str) or not header or len(header) > MAX_HEADER:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).encode("ascii")
    ok = False
    for candidate in candidates:
        # compare_digest wants ASCII; a non-ASCII candidate cannot match.
        given = candidate.encode("ascii", "replace")
        ok |= hmac.compare_digest(expected, given)
    return ok
