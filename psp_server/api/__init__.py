"""The HTTP API (docs/api.md, openapi.json): the aiohttp application and
its resources (``app``), the route table (``routes``), the handlers by
resource (``checkouts``, ``payments``, ``refunds``, ``merchants``, ``keys``,
``service``) and what they share (``http``, ``idempotency``), the one
reader of bearer credentials (``auth``), the application's typed state
(``appkeys``), the one builder of the error envelope (``envelope``), the
idempotency keys at work in this process (``in_flight``), the one-line
reports of clients' broken requests (``client_errors``), and the guards
every request passes (``guards``)."""

from psp_server.api.appkeys import (
    APPROVALS_PER_CODE,
    APPROVALS_PER_IP,
    BOARD_HUB,
    CLOCK,
    DEADLINES,
    PAIRING,
    PRESENCE,
    RELAY_WAKE,
    SESSION_KEYS,
    SETTINGS,
    STORAGE,
    WEBHOOK_DESTINATIONS,
    WEBHOOK_DISPATCHER,
    WEBHOOK_STORE,
)
from psp_server.api.envelope import error_response
from psp_server.api.guards.access_log import JsonAccessLogger
from psp_server.api.guards.header_deadline import GuardedSockSite
from psp_server.api.guards.rate_limiter import RateLimiter
from psp_server.api.http import json_body, json_response, merchant_of

__all__ = [
    "APPROVALS_PER_CODE",
    "APPROVALS_PER_IP",
    "BOARD_HUB",
    "CLOCK",
    "DEADLINES",
    "PAIRING",
    "PRESENCE",
    "RELAY_WAKE",
    "SESSION_KEYS",
    "SETTINGS",
    "STORAGE",
    "WEBHOOK_DESTINATIONS",
    "WEBHOOK_DISPATCHER",
    "WEBHOOK_STORE",
    "GuardedSockSite",
    "JsonAccessLogger",
    "RateLimiter",
    "error_response",
    "json_body",
    "json_response",
    "merchant_of",
]
