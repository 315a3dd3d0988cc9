"""The merchant's own resources: ``/v1/merchant`` and its events."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from psp_server.api.appkeys import SETTINGS, STORAGE
from psp_server.api.auth import bearer_token
from psp_server.api.http import json_body, json_response, merchant_of
from psp_server.core.errors import APIError
from psp_server.core.payloads import (
    EventsQuery,
)
from psp_server.core.qr import QrSettingsChange, check_buildable
from psp_server.core.records import Merchant
from psp_server.pairing.credential import is_terminal_credential, terminal_of
from scan2pay_common.errors import InvalidValue


def merchant_json(merchant: Merchant) -> dict[str, Any]:
    return {"id": merchant.id, "name": merchant.name, **merchant.qr.to_dict()}


async def get_merchant(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    return json_response(merchant_json(merchant))


async def update_merchant(request: web.Request) -> web.Response:
    """``PATCH /v1/merchant``: the QR settings (docs/emv.md). Every field
    is checked, and the whole result too, before anything is stored."""
    merchant = await merchant_of(request)
    body = await json_body(request)
    try:
        settings = QrSettingsChange.parse(body).applied_to(merchant.qr)
        if settings.format == "emv":
            check_buildable(merchant.name, settings, request.app[SETTINGS].require_public_url())
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    updated = await request.app[STORAGE].update_qr_settings(merchant.id, settings)
    if updated is None:  # the key was believed a moment after its merchant went
        raise APIError("unauthorized", "unknown or revoked merchant key")
    return json_response(merchant_json(updated))


async def list_events(request: web.Request) -> web.Response:
    """With a merchant's key, all its events; with a paired terminal's
    credential, the events of the checkouts made for that terminal alone
    (its soundbox catching up after a reconnect, docs/terminal.md)."""
    token = bearer_token(request)
    terminal = None
    if token is not None and is_terminal_credential(token):
        terminal = await terminal_of(request.app[STORAGE], token)
        if terminal is None:
            raise APIError("unauthorized", "unknown or unpaired terminal credential")
        merchant_id = terminal.merchant_id
    else:
        merchant_id = (await merchant_of(request)).id
    try:
        query = EventsQuery.parse(request.query.items())
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    events = await request.app[STORAGE].events_after(
        merchant_id,
        query.after,
        limit=query.limit,
        terminal_id=None if terminal is None else terminal.terminal_id,
    )
    next_after = events[-1].seq if events else query.after
    # The payloads go out as the bytes the relay publishes, not re-encoded.
    body = b'{"events":[%s],"next_after":%d}' % (b",".join(e.payload for e in events), next_after)
    return web.Response(body=body, content_type="application/json")
