"""One JSON line per request. Routes are logged by their pattern (``/Q/{code}``),
so no payment code, key or token ever reaches the log.

Nor does anything else a client chose: no path, query or header. The method
is an HTTP token (aiohttp's parser refuses any other), the route is ours,
the address the peer's (or, behind a trusted proxy, the client's as
parsed into an address by guards/forwarded.py); so the hot path escapes nothing (the formatter
still checks each message, scan2pay_common/logformat.py)."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from psp_server.api.guards.request_context import CLIENT_KEY, ID_KEY
from scan2pay_common.logformat import SUMMARY_ATTR
from scan2pay_common.logredact import FIELDS_ATTR

log = logging.getLogger("psp_server.access")


class JsonAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = None
        # Read from its slot: a request the HTTP parser refused never met the
        # router, and aiohttp's ``match_info`` asserts that it did.
        match_info = request._match_info if isinstance(request, web.Request) else None
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        fields = {
            "method": request.method,
            "route": route or "(unmatched)",
            "status": response.status,
            "ms": round(time * 1000, 2),
            # The believed client behind a trusted proxy (request_context).
            "remote": request.get(CLIENT_KEY, request.remote),
        }
        # The text format shows the fields as the message; the JSON format
        # writes them beside the record's own (scan2pay_common/logformat.py).
        self.logger.info(
            orjson.dumps(fields).decode(),
            extra={
                FIELDS_ATTR: fields,
                SUMMARY_ATTR: f"{request.method} {fields['route']} {response.status}",
                "request_id": request.get(ID_KEY),
            },
        )
