"""Each request's context, before anything else reads the request: its id,
and, behind a trusted reverse proxy, the client, scheme and host the proxy
says it served (``forwarded``).

* The request id is the proxy's ``X-Request-Id`` when a trusted proxy sent
  one that is short, plain and not shaped like a secret, else one made here. It is in every log
  record written while the request is served (``logformat.REQUEST_ID``),
  in the access log's line, and in the answer's ``X-Request-Id``, so that
  a client's complaint, the proxy's log and ours can be matched.
* Behind a trusted proxy the request is handed on as a clone whose
  ``remote``, ``scheme`` and ``host`` are the believed ones: the per-client
  rate limits (``abuse.client_key``), the cookies' Secure flag and the
  origin check (web/merchant_session.py) and a derived public URL
  (``public_url_of``) all read those. Without trusted proxies nothing is
  cloned and every header of that kind is ignored.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import TypedDict

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from psp_server.api.appkeys import SETTINGS
from psp_server.api.guards.forwarded import believe, is_trusted
from psp_server.runtime.config import Network
from scan2pay_common.logformat import REQUEST_ID
from scan2pay_common.logredact import redact

HEADER = "X-Request-Id"
# The id, in the request's state (the original request's and its clone's).
ID_KEY = web.RequestKey("scan2pay_request_id", str)
# The believed client address, for the access log, which is given the
# original request rather than the clone.
CLIENT_KEY = web.RequestKey("scan2pay_client", str)
# Set when a trusted proxy named the scheme and host the client used.
FORWARDED_HOST_KEY = web.RequestKey("scan2pay_forwarded_host", bool)

# What a proxy's id may be: nginx's $request_id is 32 hex digits; a UUID,
# a ULID or a trace id fit too. Anything else is replaced by one of ours.
_PROXY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAMES = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded")


class _Changes(TypedDict, total=False):
    """What a trusted proxy's headers change in the request handed on."""

    remote: str
    scheme: str
    host: str


class RequestIds:
    """Ids that are unique without asking the system for randomness each
    time: a random prefix per application (so per worker process: each
    makes its app after the fork) and a counter. 24 hex digits."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFF_FFFF_FFFF:012x}"


def _headers(request: web.BaseRequest) -> dict[str, str]:
    """The forwarding headers, names in lower case, repeats joined."""
    found = {}
    for name in _NAMES:
        values = request.headers.getall(name, ())
        if values:
            found[name] = ",".join(values)
    return found


def request_context(trusted: tuple[Network, ...]) -> Middleware:
    """The outermost middleware of an app whose reverse proxies are ``trusted``."""
    new_request_id = RequestIds()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = None
        changes: _Changes = {}
        if trusted and is_trusted(request.remote, trusted):
            given = request.headers.get(HEADER)
            # An id shaped like a secret is not logged: a proxy that passes
            # on what its client sent would otherwise write a key into it.
            if given is not None and _PROXY_ID.fullmatch(given) and redact(given) is given:
                request_id = given
            believed = believe(request.remote, _headers(request), trusted)
            if believed.client is not None and believed.client != request.remote:
                changes["remote"] = request[CLIENT_KEY] = believed.client
            if believed.scheme is not None:
                changes["scheme"] = believed.scheme
            if believed.host is not None:
                changes["host"] = believed.host
                request[FORWARDED_HOST_KEY] = believed.scheme is not None
        request[ID_KEY] = request_id = request_id or new_request_id()
        # Cloned last: the clone's state is a copy of the original's.
        served = request.clone(**changes) if changes else request
        token = REQUEST_ID.set(request_id)
        try:
            response = await handler(served)
        except web.HTTPException as exc:  # a redirect, say
            exc.headers[HEADER] = request_id
            raise
        finally:
            REQUEST_ID.reset(token)
        # A stream's headers went out before the handler returned: it set
        # the header itself (``stream_headers``).
        if not response.prepared:
            response.headers[HEADER] = request_id
        return response

    return middleware


def stream_headers(request: web.Request) -> dict[str, str]:
    """The header a handler that streams (prepares its answer itself) adds,
    as the middleware adds it to every other answer. (Not a signal on
    every response's prepare: that cost each request a coroutine.)"""
    request_id = request.get(ID_KEY)
    return {} if request_id is None else {HEADER: request_id}


def public_url_of(request: web.Request) -> str:
    """The URL the PSP gives wallets in a checkout's QR: the one configured;
    or, when it was only derived from the listening address and a trusted
    proxy said which scheme and host the client used, those (in upper case,
    as ``config.with_default_public_url`` makes it, for the QR's compact
    mode)."""
    settings = request.app[SETTINGS]
    if settings.public_url_derived and request.get(FORWARDED_HOST_KEY, False):
        return f"{request.scheme}://{request.host}".upper()
    return settings.require_public_url()
