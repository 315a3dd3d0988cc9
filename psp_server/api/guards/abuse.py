"""Abuse limits, as aiohttp middlewares (``middlewares()`` lists them in order).

* Rate limits: token buckets per client address and per bearer token on the
  two endpoints a stranger can hammer, ``GET /Q/{code}`` (public) and
  ``POST /v1/payments`` (any wallet); and per address on starting a
  pairing (``POST /v1/pairings``; the board limits approvals itself).
  Over the limit the answer is 429 ``rate_limited`` with ``Retry-After``
  in whole seconds. A token is kept only as a keyed hash (with the bucket
  table's secret, the same in every worker), so neither it nor the SHA-256
  the database stores is in memory keys or logs. The buckets are in one
  table of fixed size that every worker of ``--workers N`` shares
  (``bucket_table``): a limit holds across workers, and a client cycling
  through addresses or tokens cannot grow memory; at worst it makes the
  table give up buckets that were nearly full again.
* Slow bodies: a request whose body has not fully arrived ``body_timeout``
  seconds after its headers is answered 408 and its connection closed. The
  body read fails inside the handler, so each handler still decides what
  to say first (a stranger still hears 401).
* Security headers: ``X-Content-Type-Options: nosniff`` on every response;
  HTML also gets a Content-Security-Policy that allows scripts, styles,
  images and requests from the PSP itself only (no ``'unsafe-inline'``),
  ``frame-ancestors 'none'``,
  ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` (unless
  the page set another).

The client address is ``client_key``'s: the socket's peer, or behind a
proxy named in ``--trusted-proxies`` the client that proxy served
(guards/request_context.py). Behind a proxy that is not named, every
client shares the proxy's address.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from psp_server.api.appkeys import METRICS, RATE_BUCKETS, SETTINGS
from psp_server.api.auth import bearer_token
from psp_server.api.envelope import error_response
from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.rate_limiter import RateLimiter
from psp_server.core.credentials import secret_bytes
from psp_server.core.errors import APIError
from psp_server.runtime.config import Rate, Settings

log = logging.getLogger(__name__)


class Limits:
    """The limiters of one application, made from its settings on first use,
    on the buckets of ``table``."""

    def __init__(self, settings: Settings, table: BucketTable) -> None:
        def make(name: str, rate: Rate | None) -> RateLimiter | None:
            return None if rate is None else RateLimiter(name, rate, table)

        self.by_route: dict[str, tuple[RateLimiter | None, RateLimiter | None]] = {
            "qr": (
                make("qr/ip", settings.rate_qr_per_ip),
                make("qr/token", settings.rate_qr_per_token),
            ),
            "pay": (
                make("pay/ip", settings.rate_pay_per_ip),
                make("pay/token", settings.rate_pay_per_token),
            ),
            # Starting a pairing (docs/pairing.md); the board limits approvals
            # itself, to answer a person with a page rather than JSON.
            "pair": (make("pair/ip", settings.rate_pair_per_ip), None),
            # Checkouts typed in at a printed till code (docs/static-qr.md):
            # per address, and per code, whoever scans it.
            "static": (
                make("static/ip", settings.rate_static_per_ip),
                make("static/code", settings.rate_static_per_code),
            ),
        }
        self._secret = table.secret

    def token_key(self, token: str) -> str:
        return hashlib.blake2b(secret_bytes(token), key=self._secret, digest_size=16).hexdigest()


def client_key(request: web.Request) -> str:
    """The key of a per-client limit: the client's address. ``remote`` is
    the believed one: request_context hands on a clone whose ``remote`` is
    the client a trusted proxy named."""
    return f"ip:{request.remote or '?'}"


# (method, route pattern) -> the limits' name
_LIMITED = {
    ("GET", "/Q/{code}"): "qr",
    ("HEAD", "/Q/{code}"): "qr",
    ("POST", "/v1/payments"): "pay",
    ("POST", "/v1/pairings"): "pair",
    ("GET", "/S/{code}"): "qr",
    ("HEAD", "/S/{code}"): "qr",
    ("POST", "/S/{code}/checkouts"): "static",
}


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def _second(name: str) -> str:
    return "code" if name == "static" else "token"


def rate_limits() -> Middleware:
    """The rate-limit middleware of one application (one ``make_app``)."""
    made: list[Limits] = []

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = _LIMITED.get((request.method, _route(request) or ""))
        if name is None:
            return await handler(request)
        if not made:
            made.append(Limits(request.app[SETTINGS], request.app[RATE_BUCKETS]))
        limits = made[0]
        per_ip, per_token = limits.by_route[name]
        wait = 0.0
        if per_ip is not None:
            wait = per_ip.take(client_key(request))
            if wait:
                log.info("rate limited %s %s by address %s", request.method, name, request.remote)
        # The second limit is per bearer token, or on a printed code's route
        # per code (as given: a code spelled two ways is two buckets, and
        # two tries).
        token = request.match_info.get("code") if name == "static" else bearer_token(request)
        if not wait and per_token is not None and token is not None:
            wait = per_token.take(f"tok:{limits.token_key(token)}")
            if wait:
                log.info("rate limited %s %s by %s", request.method, name, _second(name))
        if wait:
            request.app[METRICS].rate_limited(name)
            return error_response(
                429,
                "rate_limited",
                "too many requests; retry after the time in Retry-After",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return await handler(request)

    return middleware


class BodyTimeout(APIError, TimeoutError):
    """What reading a body that came too slowly raises: the handler answers it
    as any API error (408); as a TimeoutError, aiohttp's lingering read after
    the answer takes it as the end of the connection."""

    def __init__(self) -> None:
        super().__init__("request_timeout", "the request body did not arrive in time", status=408)


@web.middleware
async def slow_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cuts off a client whose body is still arriving ``body_timeout`` seconds on."""
    content = request.content
    if content.is_eof():
        return await handler(request)
    timed_out = False

    def expire() -> None:
        nonlocal timed_out
        if not content.is_eof():
            timed_out = True
            content.set_exception(BodyTimeout())

    timer = asyncio.get_running_loop().call_later(request.app[SETTINGS].body_timeout, expire)
    try:
        response = await handler(request)
    finally:
        timer.cancel()
    if timed_out:
        log.info(
            "cut off a slow body on %s %s from %s", request.method, _route(request), request.remote
        )
        response.force_close()
    return response


# The pages load their scripts and styles from the PSP's own /static/ and
# talk only to the PSP: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
}
# Unless the page chose another: with no-referrer, a browser sends
# "Origin: null" on the page's own form posts, and the merchant pages
# (web/merchant_routes.py) check the origin of those.
REFERRER_POLICY = "no-referrer"


def _secure(response: web.StreamResponse) -> None:
    if response.prepared:
        return
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.content_type == "text/html":
        response.headers.update(HTML_HEADERS)
        response.headers.setdefault("Referrer-Policy", REFERRER_POLICY)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc)
        raise
    _secure(response)
    return response


def middlewares() -> list[Middleware]:
    """One application's, outermost first; its error middleware goes after these."""
    return [security_headers, rate_limits(), slow_bodies]
