"""The HTTP API's route table. The handlers live by resource (``checkouts``,
``payments``, ``refunds``, ``merchants``, ``keys``, ``service``,
``static_codes``, ``landing``); they parse,
authenticate, call storage and shape the answer. The rules live in
``psp_server.core``, the SQL in ``psp_server.storage``."""

from __future__ import annotations

from aiohttp import web

from psp_server.api.appkeys import IN_FLIGHT
from psp_server.api.checkouts import cancel_checkout, create_checkout, get_checkout
from psp_server.api.in_flight import InFlight
from psp_server.api.keys import jwks, list_keys
from psp_server.api.landing import landing
from psp_server.api.merchants import get_merchant, list_events, update_merchant
from psp_server.api.payments import lookup_code, pay
from psp_server.api.readiness import readyz
from psp_server.api.refunds import refund
from psp_server.api.service import healthz, openapi
from psp_server.api.static_codes import (
    create_static_checkout,
    create_static_code,
    list_static_codes,
    revoke_static_code,
    scan_static_code,
    static_code_sticker,
)


def add_routes(app: web.Application) -> None:
    app[IN_FLIGHT] = InFlight()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/v1/keys", list_keys)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get("/v1/merchant", get_merchant)
    app.router.add_patch("/v1/merchant", update_merchant)
    app.router.add_post("/v1/checkouts", create_checkout)
    app.router.add_get("/v1/checkouts/{checkout_id}", get_checkout)
    app.router.add_post("/v1/checkouts/{checkout_id}/cancel", cancel_checkout)
    app.router.add_post("/v1/checkouts/{checkout_id}/refunds", refund)
    app.router.add_post("/v1/payments", pay)
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/Q/{code}", lookup_code)
    app.router.add_get("/pay", landing)
    app.router.add_post("/pay", landing)
    app.router.add_post("/v1/terminals/{terminal_id}/static-codes", create_static_code)
    app.router.add_get("/v1/terminals/{terminal_id}/static-codes", list_static_codes)
    app.router.add_delete("/v1/static-codes/{code_id}", revoke_static_code)
    app.router.add_get("/v1/static-codes/{code_id}/sticker.{fmt}", static_code_sticker)
    app.router.add_get("/S/{code}", scan_static_code)
    app.router.add_post("/S/{code}/checkouts", create_static_checkout)
