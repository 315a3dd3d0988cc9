"""Secrets and identifiers the PSP hands out.

Keys and tokens carry 192 random bits and are stored only as SHA-256 hashes:
with that much entropy a slow password hash adds nothing, and a hash lookup
keeps authentication one indexed read.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time

CODE_BYTES = 20  # 160 bits: 32 base32 characters with no padding


class _RandomPool:
    """The kernel's CSPRNG (``os.urandom``, as ``secrets`` uses) drawn 4 KiB
    at a time: one system call per ~200 codes instead of one per code,
    which the profile showed as 7% of the request thread's time. Bytes are
    handed out once and the pool is emptied in a forked child, so that two
    processes never share a byte."""

    _DRAW = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._at + count > len(self._pool):
                self._pool, self._at = os.urandom(max(self._DRAW, count)), 0
            chunk = self._pool[self._at : self._at + count]
            self._at += count
            return chunk


_random = _RandomPool()


def new_code() -> str:
    """A one-time QR code: upper-case RFC 4648 base32, so that an upper-case
    URL around it stays in the QR's alphanumeric mode."""
    return base64.b32encode(_random.take(CODE_BYTES)).decode("ascii")


def new_id(prefix: str) -> str:
    """``{prefix}_`` and 28 hex digits: the time in milliseconds (48 bits),
    then 64 random bits.

    Time first, because every id is a key in a B-tree index: random ids put
    each insert of a group commit on a page of its own, and the PSP wrote
    and checkpointed some 900 KB per commit under load; ids that grow with
    time share the index's last pages (about 40% less written, and the
    request thread no longer waits on longer commits). 64 random bits keep
    ids unique without coordination between processes: two ids made in the
    same millisecond collide with a chance of 2^-64. An id is a name, not a
    secret (the QR's code is), so the time in it gives nothing away that
    the object's ``created_at`` does not."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_random.take(8).hex()}"


def new_api_key() -> str:
    return "mk_" + secrets.token_urlsafe(24)


def new_wallet_token() -> str:
    return "wt_" + secrets.token_urlsafe(24)


# Copying a ready SHA-256 spares OpenSSL 3's look-up of the algorithm by
# name, which costs more than hashing a key (every request hashes one).
_SHA256 = hashlib.sha256()


def hash_secret(secret: str) -> str:
    digest = _SHA256.copy()
    digest.update(secret_bytes(secret))
    return digest.hexdigest()


def secret_bytes(text: str) -> bytes:
    """The bytes of a secret as a client sent it. aiohttp passes bytes that
    are not UTF-8 on as lone surrogates, which plain ``encode()`` refuses
    with an exception (a 500); these bytes simply match no secret."""
    return text.encode("utf-8", "surrogatepass")


def revoked_marker() -> str:
    """What a revoked key's hash column holds: unique, and never a hex digest."""
    return "revoked:" + secrets.token_hex(16)
