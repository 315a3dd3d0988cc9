"""The merchant's web session in aiohttp: the session keys' life in the
app, the cookies' names and flags, and the origin check. What a session
is, and how its cookie and CSRF token are made and checked, is
``session_keys``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from psp_server.api.appkeys import SESSION_KEYS, SETTINGS, STORAGE
from psp_server.web.session_keys import SessionKeys

_SESSION = "s2p-merchant"
_FORM = "s2p-signin"
# A secure cookie is named __Host-: the browser then takes it only over
# TLS, for the whole host and from the host itself (no Domain attribute).
_HOST_PREFIX = "__Host-"


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SESSION_KEYS] = SessionKeys(app[STORAGE].signing_key.private_bytes())
    yield


def install(app: web.Application) -> None:
    """Derives the key once the storage is open (after its cleanup_ctx)."""
    app.cleanup_ctx.append(_keys_ctx)


def keys(app: web.Application) -> SessionKeys:
    return app[SESSION_KEYS]


def is_secure(request: web.Request) -> bool:
    """Over TLS here, or behind a proxy that serves the PSP as https."""
    public_url = request.app[SETTINGS].public_url or ""
    return request.secure or public_url.lower().startswith("https://")


def session_cookie_name(request: web.Request) -> str:
    return _HOST_PREFIX + _SESSION if is_secure(request) else _SESSION


def form_cookie_name(request: web.Request) -> str:
    return _HOST_PREFIX + _FORM if is_secure(request) else _FORM


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    set_cookie(request, response, name, "", 0)


def same_origin(request: web.Request) -> bool:
    """No ``Origin`` header (an old browser, a same-origin GET) is let
    through: the CSRF token decides. One that is there must name this
    host, as the client reached it or as the public URL names it."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    scheme, sep, authority = origin.lower().partition("://")
    if not sep or scheme not in ("http", "https"):
        return False  # "null", from a sandboxed frame or a redirect across sites
    if authority == request.host.lower():
        return True
    public_url = (request.app[SETTINGS].public_url or "").lower().rstrip("/")
    return bool(public_url) and public_url == origin.lower()
