"""A paired terminal's own HTTP credential: ``Bearer PAIRING_ID:DEVICE_SECRET``,
the two things pairing left it with (docs/pairing.md). Nothing new is
issued or stored: the PSP keeps only the device secret's SHA-256, as it
does for pairing. It opens one thing, ``GET /v1/events`` narrowed to that
terminal's checkouts (the soundbox's catch-up), and stops working when the
terminal is unpaired."""

from __future__ import annotations

from psp_server.pairing.service import check_device_secret, hash_device_secret
from psp_server.pairing.store import Paired, PairingStore
from psp_server.storage import Storage
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id

PREFIX = "pair_"


def is_terminal_credential(token: str) -> bool:
    """Its shape alone: a pairing id, a colon, something. A merchant's key
    (``mk_…``) never has this shape."""
    return token.startswith(PREFIX) and ":" in token


async def terminal_of(storage: Storage, token: str) -> Paired | None:
    """The paired terminal ``token`` stands for; None for a wrong secret,
    an unknown or unpaired pairing, or a token of the wrong shape."""
    pairing_id, _, secret = token.partition(":")
    try:
        # Pairing ids are made like every other id: pair_ and hex digits.
        check_checkout_id(pairing_id)
        check_device_secret(secret)
    except InvalidValue:
        return None
    store = PairingStore.of(storage)
    return await store.paired_with_secret(pairing_id, hash_device_secret(secret))
