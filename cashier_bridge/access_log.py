"""The local API's access log: aiohttp's usual line (``%a "%r" %s %b
"%{Referer}i" "%{User-Agent}i"``, the time stamp being the record's own),
with what the client chose, the request line and the two headers, made
safe to log: aiohttp's own logger writes them raw, and it decodes header
bytes that are not UTF-8 as lone surrogates."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from scan2pay_common.logtext import loggable


class SafeAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        version = request.version
        line = f"{request.method} {request.path_qs} HTTP/{version.major}.{version.minor}"
        headers = request.headers
        self.logger.info(
            '%s "%s" %d %d "%s" "%s"',
            request.remote or "-",
            loggable(line),
            response.status,
            response.body_length,
            loggable(headers.get("Referer", "-")),
            loggable(headers.get("User-Agent", "-")),
        )
