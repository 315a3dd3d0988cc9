"""Counts and times every request the router saw, by route template
(``/Q/{code}``, never the path: a code, id or key never becomes a label).
Outermost but for the header deadline, so that it sees the answer the
error middleware made of an exception, and the rate limits' 429s."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from psp_server.api.appkeys import METRICS

UNMATCHED = "(unmatched)"


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects, raised through the error middleware
        status = exc.status
        raise
    finally:
        request.app[METRICS].request(
            route_of(request), request.method, status, time.perf_counter() - started
        )
