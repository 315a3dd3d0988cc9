"""The webhook API: a merchant registers, lists and disables its endpoints,
reads the delivery log and asks for a redelivery (docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from psp_server.api.appkeys import CLOCK, WEBHOOK_DESTINATIONS, WEBHOOK_DISPATCHER, WEBHOOK_STORE
from psp_server.api.http import json_body, json_response, merchant_of
from psp_server.core.errors import APIError
from psp_server.webhooks import failures
from psp_server.webhooks.requests import parse_create, parse_limit
from psp_server.webhooks.store import Delivery, Endpoint, WebhookRefused
from scan2pay_common.errors import InvalidValue
from scan2pay_common.timefmt import to_rfc3339


def _refusal(exc: WebhookRefused) -> APIError:
    refusal = exc.refusal
    return APIError(refusal.code, refusal.message, status=refusal.status)


def _time(ms: int | None) -> str | None:
    return None if ms is None else to_rfc3339(ms)


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "created_at": to_rfc3339(endpoint.created_at),
        "enabled": endpoint.enabled,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    # The outcome by class only (failures.py): the exact status and the
    # error's text would map what the PSP can reach.
    return {
        "event_id": delivery.event_id,
        "seq": delivery.seq,
        "type": delivery.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_attempt_at": _time(delivery.last_attempt_at),
        # Exact: only public addresses can answer (destinations.py), and a
        # merchant mending its endpoint needs to tell a 401 from a 404.
        "last_status_code": delivery.last_status_code,
        "last_error": failures.public(delivery.last_error, delivery.last_status_code),
        "next_attempt_at": _time(delivery.next_attempt_at),
        "delivered_at": _time(delivery.delivered_at),
        "created_at": to_rfc3339(delivery.created_at),
    }


async def create_webhook(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    body = await json_body(request)
    try:
        url = parse_create(body, request.app[WEBHOOK_DESTINATIONS])
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    try:
        endpoint, secret = await request.app[WEBHOOK_STORE].create_endpoint(
            merchant.id, url, now=request.app[CLOCK].now_ms()
        )
    except WebhookRefused as exc:
        raise _refusal(exc) from None
    return json_response({**endpoint_json(endpoint), "secret": secret}, status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    endpoints = await request.app[WEBHOOK_STORE].list_endpoints(merchant.id)
    return json_response({"webhooks": [endpoint_json(e) for e in endpoints]})


async def delete_webhook(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    try:
        endpoint = await request.app[WEBHOOK_STORE].disable_endpoint(
            merchant.id, request.match_info["webhook_id"], now=request.app[CLOCK].now_ms()
        )
    except WebhookRefused as exc:
        raise _refusal(exc) from None
    return json_response(endpoint_json(endpoint))


async def list_deliveries(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    try:
        limit = parse_limit(request.query.get("limit"))
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    try:
        deliveries = await request.app[WEBHOOK_STORE].deliveries(
            merchant.id, request.match_info["webhook_id"], limit=limit
        )
    except WebhookRefused as exc:
        raise _refusal(exc) from None
    return json_response({"deliveries": [delivery_json(d) for d in deliveries]})


async def redeliver(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    try:
        delivery = await request.app[WEBHOOK_STORE].redeliver(
            merchant.id,
            request.match_info["webhook_id"],
            request.match_info["event_id"],
            now=request.app[CLOCK].now_ms(),
        )
    except WebhookRefused as exc:
        raise _refusal(exc) from None
    dispatcher = request.app.get(WEBHOOK_DISPATCHER)
    if dispatcher is not None:
        dispatcher.wake()
    return json_response(delivery_json(delivery), status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks", create_webhook)
    app.router.add_get("/v1/webhooks", list_webhooks)
    app.router.add_delete("/v1/webhooks/{webhook_id}", delete_webhook)
    app.router.add_get("/v1/webhooks/{webhook_id}/deliveries", list_deliveries)
    app.router.add_post("/v1/webhooks/{webhook_id}/deliveries/{event_id}/redeliver", redeliver)
