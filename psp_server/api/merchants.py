"""The merchant's own resources: ``/v1/merchant`` and its events."""

from __future__ import annotations

from aiohttp import web

from psp_server.api.appkeys import STORAGE
from psp_server.api.auth import bearer_token
from psp_server.api.http import json_response, merchant_of
from psp_server.core.errors import APIError
from psp_server.core.payloads import (
    EventsQuery,
)
from psp_server.pairing.credential import is_terminal_credential, terminal_of
from scan2pay_common.errors import InvalidValue


async def get_merchant(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    return json_response({"id": merchant.id, "name": merchant.name})


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
