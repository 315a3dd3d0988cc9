"""A secret in every form it could be written down in, for the tests that
search logs for secrets (tests/e2e/test_log_secrets*.py)."""

from __future__ import annotations

import base64

from psp_server.core.credentials import hash_secret


def secret_forms(secret: str | bytes) -> set[str]:
    """A secret as it could be written down: itself, its hash, its encodings."""
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = {raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms |= {f.rstrip("=") for f in forms}
    if isinstance(secret, str):
        forms |= {secret, hash_secret(secret), repr(secret)}
        # Much of a secret is as bad as all of it: any 12 characters of it.
        forms |= {secret[i : i + 12] for i in range(0, max(1, len(secret) - 11), 4)}
    return {f for f in forms if len(f) >= 8}
