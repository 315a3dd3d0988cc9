"""The terminal's side of pairing over HTTP (docs/pairing.md, openapi.json):

- ``POST /v1/pairings`` with the SHA-256 of a device secret the terminal
  made: a pairing id and the code to show (rate-limited per address,
  ``abuse.py``);
- ``POST /v1/pairings/{pairing_id}/poll`` with the device secret itself:
  where the pairing stands, and once approved, the terminal's settings,
  handed over once. Afterwards the same call tells a terminal whether it
  is still paired (``paired``) or was unpaired (``revoked``).

No other authentication: the pairing id and the device secret are the
terminal's, and neither is ever shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from psp_server.api.appkeys import (
    APPROVALS_PER_CODE,
    APPROVALS_PER_IP,
    CLOCK,
    PAIRING,
    RATE_BUCKETS,
    SETTINGS,
    STORAGE,
)
from psp_server.api.guards.rate_limiter import RateLimiter
from psp_server.core.errors import APIError
from psp_server.pairing.broker import Broker
from psp_server.pairing.service import (
    POLL_INTERVAL_S,
    Handover,
    Pairing,
    check_device_secret,
    check_secret_hash,
)
from psp_server.pairing.store import Paired, PairingRefused, Pending
from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id
from scan2pay_common.timefmt import to_rfc3339


def refused(exc: PairingRefused) -> APIError:
    return APIError(exc.code, exc.message, status=exc.status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        return jsonfields.load_object(await request.read())
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=jsonfields.dumps_unordered(body),
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


async def start(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        jsonfields.check_fields(body, required=frozenset({"device_secret_hash"}))
        secret_hash = check_secret_hash(body["device_secret_hash"])
        started = await request.app[PAIRING].start(secret_hash)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    except PairingRefused as exc:
        raise refused(exc) from None
    return _json(
        {
            "pairing_id": started.pairing_id,
            "code": started.code,
            "pairing_url": started.url,
            "expires_at": to_rfc3339(started.expires_at),
            "poll_interval": POLL_INTERVAL_S,
        },
        201,
    )


async def poll(request: web.Request) -> web.Response:
    try:
        # Pairing ids are made like every other id: pair_ and hex digits.
        pairing_id = check_checkout_id(request.match_info["pairing_id"])
    except InvalidValue:
        raise refused(PairingRefused("not_found", "no such pairing", 404)) from None
    body = await _body(request)
    try:
        jsonfields.check_fields(body, required=frozenset({"device_secret"}))
        secret = check_device_secret(body["device_secret"])
        polled = await request.app[PAIRING].poll(pairing_id, secret)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    except PairingRefused as exc:
        raise refused(exc) from None
    if isinstance(polled, Handover):
        return _json({"status": "approved", "settings": polled.settings})
    if isinstance(polled, Pending):
        return _json({"status": "pending", "expires_at": to_rfc3339(polled.expires_at)})
    if isinstance(polled, Paired):
        return _json(
            {
                "status": "paired",
                "merchant_id": polled.merchant_id,
                "terminal_id": polled.terminal_id,
            }
        )
    return _json({"status": "revoked"})


async def _pairing_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[PAIRING] = Pairing(
        app[STORAGE], Broker.of(settings), settings.require_public_url(), app[CLOCK]
    )
    yield


def add_routes(app: web.Application) -> None:
    """After the storage's cleanup_ctx: the service needs the open storage."""
    settings, table = app[SETTINGS], app[RATE_BUCKETS]
    if settings.rate_pair_approve_per_ip is not None:
        app[APPROVALS_PER_IP] = RateLimiter(
            "pair-approve/ip", settings.rate_pair_approve_per_ip, table
        )
    if settings.rate_pair_approve_per_code is not None:
        app[APPROVALS_PER_CODE] = RateLimiter(
            "pair-approve/code", settings.rate_pair_approve_per_code, table
        )
    app.cleanup_ctx.append(_pairing_ctx)
    app.router.add_post("/v1/pairings", start)
    app.router.add_post("/v1/pairings/{pairing_id}/poll", poll)
