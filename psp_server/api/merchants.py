"""The merchant's own resources: ``/v1/merchant`` and its events."""

from __future__ import annotations

from aiohttp import web

from psp_server.api.appkeys import STORAGE
from psp_server.api.http import json_response, merchant_of
from psp_server.core.errors import APIError
from psp_server.core.payloads import (
    EventsQuery,
)
from scan2pay_common.errors import InvalidValue


async def get_merchant(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    return json_response({"id": merchant.id, "name": merchant.name})


async def list_events(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    try:
        query = EventsQuery.parse(request.query.items())
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    events = await request.app[STORAGE].events_after(merchant.id, query.after, limit=query.limit)
    next_after = events[-1].seq if events else query.after
    # The payloads go out as the bytes the relay publishes, not re-encoded.
    body = b'{"events":[%s],"next_after":%d}' % (b",".join(e.payload for e in events), next_after)
    return web.Response(body=body, content_type="application/json")
