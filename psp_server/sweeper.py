"""Marks pending checkouts expired once their time is up, so that the merchant
hears ``checkout.expired``. Payment does not wait for it: a checkout past its
``expires_at`` is refused whether or not the sweeper has been by. It also
forgets idempotency keys older than their 24-hour replay window."""

from __future__ import annotations

import asyncio
import logging

from scan2pay_common.timefmt import now_ms

from .storage import Storage
from .storage.base import IDEMPOTENCY_KEY_TTL_MS

log = logging.getLogger(__name__)

BATCH = 500


async def sweep_forever(storage: Storage, wake_relay: asyncio.Event, interval: float) -> None:
    while True:
        try:
            expired = await storage.expire_due(now=now_ms(), limit=BATCH)
        except Exception:
            log.exception("expiry sweep failed; trying again")
            expired = 0
        if expired:
            log.info("expired %d checkout(s)", expired)
            wake_relay.set()
        try:
            purged = await storage.purge_idempotency_keys(now_ms() - IDEMPOTENCY_KEY_TTL_MS)
        except Exception:
            log.exception("purging old idempotency keys failed; trying again")
            purged = 0
        if expired < BATCH and purged == 0:
            await asyncio.sleep(interval)
