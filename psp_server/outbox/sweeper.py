"""Marks pending checkouts expired once their time is up, so that the merchant
hears ``checkout.expired``. Payment does not wait for it: a checkout past its
``expires_at`` is refused whether or not the sweeper has been by. It also
forgets idempotency keys older than their 24-hour replay window."""

from __future__ import annotations

import asyncio
import logging

from psp_server.core.errors import StorageUnavailable
from psp_server.metrics import NO_METRICS, Metrics
from psp_server.storage import Storage
from psp_server.storage.base import IDEMPOTENCY_KEY_TTL_MS
from scan2pay_common.backoff import Backoff
from scan2pay_common.clock import Clock
from scan2pay_common.statuses import Status

log = logging.getLogger(__name__)

BATCH = 500
# The longest pause between tries while the database is away.
OUTAGE_PAUSE_MAX = 5.0


async def sweep_forever(
    storage: Storage,
    wake_relay: asyncio.Event,
    interval: float,
    clock: Clock,
    metrics: Metrics = NO_METRICS,
) -> None:
    # While the database is away each round fails at once: without a growing
    # pause a short interval (tests use 0.05 s) becomes a busy loop.
    backoff = Backoff(initial=interval, maximum=max(interval, OUTAGE_PAUSE_MAX))
    while True:
        try:
            expired = await storage.expire_due(now=clock.now_ms(), limit=BATCH)
            if expired:
                log.info("expired %d checkout(s)", expired)
                metrics.transition(Status.EXPIRED, expired)
                wake_relay.set()
            purged = await storage.purge_idempotency_keys(clock.now_ms() - IDEMPOTENCY_KEY_TTL_MS)
        except StorageUnavailable:  # the storage logs the outage, once
            await asyncio.sleep(backoff.next_delay())
            continue
        except Exception:
            log.exception("expiry sweep failed; trying again")
            await asyncio.sleep(backoff.next_delay())
            continue
        backoff.reset()
        if expired < BATCH and purged == 0:
            await asyncio.sleep(interval)
