"""Asks the PSP what a QR URL is for: ``GET /Q/{CODE}`` as JSON. Whether
the answer counts (the checkout on screen, this merchant's) is
``terminal.trust``'s to say.

Asked with ``terminal.psp_get`` (the standard library's urllib) in a
worker thread.
"""

from __future__ import annotations

import asyncio
import logging

from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import is_checkout_status
from scan2pay_common.money import check_currency
from scan2pay_common.timefmt import from_rfc3339

from .controller import CodeInfo
from .psp_get import NoAnswer, get_json_object

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3
MAX_ANSWER = 64 * 1024


async def lookup(url: str) -> CodeInfo | None:
    """None when the PSP cannot be reached or does not know the code: the
    terminal then goes on showing the QR alone."""
    return await asyncio.to_thread(_lookup, url)


def _lookup(url: str) -> CodeInfo | None:
    # The daemon asks only about URLs under its configured http(s) PSP URL
    # (config.is_bare_qr_url); get_json_object refuses any other scheme.
    try:
        body = get_json_object(url, what="code info", timeout=TIMEOUT_SECONDS, max_bytes=MAX_ANSWER)
    except NoAnswer as exc:
        log.warning("asking the PSP about a QR URL: %s", exc)
        return None
    try:
        amount = jf.integer(body, "amount")
        status = jf.string(body, "status")
        if not is_checkout_status(status):
            raise InvalidValue("invalid_status", f"unknown checkout status {status!r}")
        return CodeInfo(
            url=url,
            checkout_id=jf.string(body, "checkout_id"),
            amount=amount,
            currency=check_currency(body["currency"]),
            expires_at=from_rfc3339(body["expires_at"]),
            status=status,
            merchant_id=_merchant_id(body.get("merchant")),
        )
    except (KeyError, InvalidValue) as exc:
        log.warning("PSP's answer about a QR URL is incomplete: %s", loggable(exc))
        return None


def _merchant_id(merchant: object) -> str | None:
    """The merchant's id the answer names; None from a PSP before it named
    one (the answer is then no evidence of anything)."""
    if not isinstance(merchant, dict) or merchant.get("id") is None:
        return None
    return check_merchant_id(merchant["id"])
