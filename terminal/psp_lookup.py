"""Asks the PSP what a bare QR URL is for: ``GET /Q/{CODE}`` as JSON."""

from __future__ import annotations

import logging

import aiohttp

from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import check_currency
from scan2pay_common.timefmt import from_rfc3339

from .controller import CodeInfo

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=3)


async def lookup(session: aiohttp.ClientSession, url: str) -> CodeInfo | None:
    """None when the PSP cannot be reached or does not know the code: the
    terminal then goes on showing the QR alone."""
    try:
        async with session.get(url, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                log.warning("PSP answered %d for a bare QR URL", response.status)
                return None
            body = jf.load_object(await response.read(), what="code info")
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("PSP unreachable for a bare QR URL: %s", exc)
        return None
    except InvalidValue as exc:
        log.warning("PSP's answer for a bare QR URL is not JSON: %s", exc.message)
        return None
    try:
        amount = jf.integer(body, "amount")
        return CodeInfo(
            url=url,
            checkout_id=jf.string(body, "checkout_id"),
            amount=amount,
            currency=check_currency(body["currency"]),
            expires_at=from_rfc3339(body["expires_at"]),
            status=jf.string(body, "status"),
        )
    except (KeyError, InvalidValue) as exc:
        log.warning("PSP's answer for a bare QR URL is incomplete: %s", exc)
        return None
