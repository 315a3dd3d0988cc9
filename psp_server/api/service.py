"""The service itself: ``/healthz`` and ``/openapi.json``."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from psp_server.api.appkeys import CLOCK, RELAY
from psp_server.api.http import json_response
from scan2pay_common.timefmt import to_rfc3339

_OPENAPI = (resources.files("psp_server") / "openapi.json").read_bytes()


async def healthz(request: web.Request) -> web.Response:
    relay = request.app.get(RELAY)
    mqtt = "disabled" if relay is None else ("connected" if relay.connected else "disconnected")
    return json_response(
        {"status": "ok", "mqtt": mqtt, "time": to_rfc3339(request.app[CLOCK].now_ms())}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_OPENAPI, content_type="application/json")
