"""Secrets and identifiers the PSP hands out.

Keys and tokens carry 192 random bits and are stored only as SHA-256 hashes:
with that much entropy a slow password hash adds nothing, and a hash lookup
keeps authentication one indexed read.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

CODE_BYTES = 20  # 160 bits: 32 base32 characters with no padding


def new_code() -> str:
    """A one-time QR code: upper-case RFC 4648 base32, so that an upper-case
    URL around it stays in the QR's alphanumeric mode."""
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def new_api_key() -> str:
    return "mk_" + secrets.token_urlsafe(24)


def new_wallet_token() -> str:
    return "wt_" + secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def revoked_marker() -> str:
    """What a revoked key's hash column holds: unique, and never a hex digest."""
    return "revoked:" + secrets.token_hex(16)
