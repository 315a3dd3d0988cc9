"""A merchant's view of its webhook deliveries, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.polling import until
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

    async def reached() -> list[dict[str, Any]] | None:
        log = await log_of(psp, merchant, webhook_id)
        # Empty until the dispatcher's scan has committed, which on
        # PostgreSQL runs beside the request that wrote the event.
        return log if log and check(log) else None

    found: list[dict[str, Any]] = await until(
        reached, what="the delivery log to get there", timeout=timeout
    )
    return found
