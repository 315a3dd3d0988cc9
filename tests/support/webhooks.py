"""A merchant's view of its webhook deliveries, through the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.support.psp import Merchant, Psp


async def log_of(psp: Psp, merchant: Merchant, webhook_id: str) -> list[dict[str, Any]]:
    status, body = await psp.call(
        "GET", f"/v1/webhooks/{webhook_id}/deliveries", headers=merchant.auth
    )
    assert status == 200, body
    deliveries: list[dict[str, Any]] = body["deliveries"]
    return deliveries


async def log_until(
    psp: Psp,
    merchant: Merchant,
    webhook_id: str,
    check: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        log = await log_of(psp, merchant, webhook_id)
        # Empty until the dispatcher's scan has committed, which on
        # PostgreSQL runs beside the request that wrote the event.
        if log and check(log):
            return log
        assert time.monotonic() < deadline, f"the delivery log never got there: {log}"
        await asyncio.sleep(0.01)
