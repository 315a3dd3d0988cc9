"""``cashier-bridge serve``: a small HTTP API on the cashier PC, so that
existing POS software can start a checkout with one POST and follow it.

    POST /checkouts                 202, starts a flow in the background
    GET  /checkouts/{id}            its progress: status, steps, error
    GET  /checkouts/{id}/events     the steps as server-sent events, to the end
    POST /checkouts/{id}/cancel     cancels it
    GET  /tills/{terminal_id}/events  payments customers made at the till's
                                    printed code, as server-sent events

It has no authentication, so it listens on loopback unless told otherwise.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_terminal_id
from scan2pay_common.logtext import loggable

from .access_log import SafeAccessLogger
from .errors import BridgeError, PspRefused, PspUnreachable
from .model import BridgeConfig
from .orders import InvalidOrder, build_order
from .output import dumps
from .session import BridgeSession
from .terminal_link import BrokerLink
from .tracker import LocalCheckout, Registry

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", BridgeConfig)
REGISTRY = web.AppKey("registry", Registry)
SESSION = web.AppKey("session", BridgeSession)

MAX_BODY = 16 * 1024
# A comment line this often keeps proxies and idle timers from closing a
# quiet event stream while the customer looks for their phone.
KEEPALIVE_SECONDS = 15.0
# How long POST .../cancel waits for the flow to reach its outcome.
CANCEL_WAIT_SECONDS = 10.0

_FIELDS = frozenset({"order_id", "currency"})
_OPTIONAL = frozenset({"amount", "amount_major", "terminal_id", "expires_in", "description"})

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, text=dumps(body), content_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", loggable(request.method), loggable(request.path))
        return _error(500, "internal_error", "internal error; the bridge logged it")


def _tracked(request: web.Request) -> LocalCheckout:
    tracked = request.app[REGISTRY].get(request.match_info["local_id"])
    if tracked is None:
        raise ApiError(404, "not_found", "no such checkout on this bridge")
    return tracked


def _links(tracked: LocalCheckout) -> dict[str, str]:
    base = f"/checkouts/{tracked.id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"}


def _document(tracked: LocalCheckout) -> dict[str, Any]:
    return {**tracked.to_json(), "links": _links(tracked)}


# Handlers.


async def create_checkout(request: web.Request) -> web.Response:
    try:
        body = jsonfields.load_object(await request.read())
    except InvalidValue as exc:
        raise ApiError(400, exc.code, exc.message) from None
    try:
        jsonfields.check_fields(body, required=_FIELDS, optional=_OPTIONAL)
    except InvalidValue as exc:
        raise ApiError(422, exc.code, exc.message) from None
    registry = request.app[REGISTRY]
    try:
        order = build_order(
            order_id=body["order_id"],
            currency=body["currency"],
            amount=body.get("amount"),
            amount_major=body.get("amount_major"),
            terminal_id=body.get("terminal_id"),
            default_terminal=registry.config.terminal_id,
            expires_in=body.get("expires_in"),
            description=body.get("description"),
        )
    except InvalidOrder as exc:
        raise ApiError(422, exc.problems[0].code, exc.message) from None
    existing = registry.by_order(order.order_id)
    if existing is not None and not (existing.status == "failed" and existing.order == order):
        # A POS that did not hear our answer may send the same request
        # again: the same order is the same checkout, as at the PSP. After a
        # failure it is tried again; the PSP finds what the first try made.
        if existing.order != order:
            raise ApiError(
                409,
                "order_conflict",
                f"order {order.order_id} is checkout {existing.id} here, with other details",
            )
        return _json(_document(existing), 200, Location=_links(existing)["self"])
    busy = registry.running_on(order.terminal_id)
    if busy is not None:
        raise ApiError(
            409,
            "terminal_busy",
            f"terminal {order.terminal_id} is showing checkout {busy.id} "
            f"(order {busy.order.order_id}); cancel it or wait for its outcome",
        )
    tracked = registry.start(order)
    return _json(_document(tracked), 202, Location=_links(tracked)["self"])


async def get_checkout(request: web.Request) -> web.Response:
    return _json(_document(_tracked(request)))


async def cancel_checkout(request: web.Request) -> web.Response:
    tracked = _tracked(request)
    if tracked.finished:
        if tracked.status == "cancelled":
            return _json(_document(tracked))
        raise ApiError(409, "finished", f"checkout {tracked.id} already ended: {tracked.status}")
    checkout_id = tracked.checkout_id
    if checkout_id is None:
        # Not created yet (or being created): stopping the flow is the
        # cancel; it cancels at the PSP whatever the create made.
        if tracked.task is None:  # the tracker starts each checkout's flow with it
            raise RuntimeError(f"checkout {tracked.id} has no flow to stop")
        tracked.task.cancel()
    else:
        # Cancelled at the PSP, the flow hears the event, confirms it, and
        # puts "cancelled" on the terminal like any other outcome.
        try:
            await request.app[SESSION].psp.cancel_checkout(checkout_id)
        except PspRefused as exc:
            code = exc.psp_code or "psp_refused"
            if code in ("already_paid", "expired"):
                await _until_finished(tracked)
            raise ApiError(409, code, exc.message) from None
        except PspUnreachable as exc:
            raise ApiError(502, exc.code, exc.message) from None
        except BridgeError as exc:
            raise ApiError(502, exc.code, exc.message) from None
    await _until_finished(tracked)
    return _json(_document(tracked))


async def _until_finished(tracked: LocalCheckout) -> None:
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while not tracked.finished and time.monotonic() < deadline:
        await tracked.changed(deadline)


async def stream_events(request: web.Request) -> web.StreamResponse:
    tracked = _tracked(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
    )
    await response.prepare(request)
    # A reconnecting EventSource sends the last id it got; go on after it.
    last_id = request.headers.get("Last-Event-ID", "")
    index = int(last_id) + 1 if last_id.isdigit() else 0
    try:
        while True:
            while index < len(tracked.steps):
                step = tracked.steps[index]
                data = dumps(step)
                await response.write(
                    f"id: {index}\nevent: {step['step']}\ndata: {data}\n\n".encode()
                )
                index += 1
            if tracked.finished and index >= len(tracked.steps):
                break
            before = len(tracked.steps), tracked.finished
            await tracked.changed(time.monotonic() + KEEPALIVE_SECONDS)
            if (len(tracked.steps), tracked.finished) == before:
                await response.write(b": keep-alive\n\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away
    return response


def _static_event(number: int, payment: dict[str, Any]) -> bytes:
    return f"id: {number}\nevent: static_payment\ndata: {dumps(payment)}\n\n".encode()


def _heard_after(broker: BrokerLink, heard: int) -> Callable[[], bool | None]:
    return lambda: True if broker.static_heard > heard else None


async def stream_till(request: web.Request) -> web.StreamResponse:
    """The payments customers make at a till's printed code from now on
    (after ``Last-Event-ID``, when a reconnecting client sends one), as
    ``static_payment`` events; a comment keeps the stream alive."""
    try:
        terminal_id = check_terminal_id(request.match_info["terminal_id"])
    except InvalidValue as exc:
        raise ApiError(422, "bad_input", exc.message) from None
    session = request.app[SESSION]
    try:
        _, broker = await session.connected(session.psp)
    except BridgeError as exc:
        raise ApiError(503, exc.code, exc.message) from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    last_id = request.headers.get("Last-Event-ID", "")
    heard = int(last_id) if last_id.isdigit() else broker.static_heard
    try:
        while True:
            fresh = broker.static_payments_since(heard)
            # Each event's id is how many static payments had been heard
            # with it: a reconnecting client goes on after it.
            first = broker.static_heard - len(fresh) + 1
            heard = broker.static_heard
            for number, payment in enumerate(fresh, start=first):
                if payment.terminal_id == terminal_id:
                    await response.write(_static_event(number, payment.to_json()))
            if not fresh:
                await response.write(b": keep-alive\n\n")
            await broker.until(_heard_after(broker, heard), time.monotonic() + KEEPALIVE_SECONDS)
    except ConnectionResetError:
        pass  # the client went away
    return response


# The application.


async def _resources_ctx(app: web.Application) -> AsyncIterator[None]:
    # One session for every checkout: one PSP client, one MQTT connection,
    # the merchant and keys fetched once (session.py).
    async with BridgeSession(app[CONFIG]) as session:
        app[SESSION] = session
        app[REGISTRY] = Registry(session)
        yield
        await app[REGISTRY].cancel_all()  # nothing left by now, normally; see _stop_flows


async def _stop_flows(app: web.Application) -> None:
    """Runs at shutdown before aiohttp waits for open requests: the event
    streams end when their flows do, so the flows must stop first."""
    await app[REGISTRY].cancel_all()


def make_app(config: BridgeConfig) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY)
    app[CONFIG] = config
    app.cleanup_ctx.append(_resources_ctx)
    app.on_shutdown.append(_stop_flows)
    app.router.add_post("/checkouts", create_checkout)
    app.router.add_get("/checkouts/{local_id}", get_checkout)
    app.router.add_get("/checkouts/{local_id}/events", stream_events)
    app.router.add_post("/checkouts/{local_id}/cancel", cancel_checkout)
    app.router.add_get("/tills/{terminal_id}/events", stream_till)
    return app


@dataclass
class LocalApi:
    runner: web.AppRunner
    app: web.Application
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_local_api(
    config: BridgeConfig, host: str = "127.0.0.1", port: int = 8765
) -> LocalApi:
    """Listening on ``host:port`` (port 0: any free one, named in ``url``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    app = make_app(config)
    runner = web.AppRunner(
        app, shutdown_timeout=5.0, access_log=log, access_log_class=SafeAccessLogger
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return LocalApi(runner, app, f"http://{shown}:{bound}")
