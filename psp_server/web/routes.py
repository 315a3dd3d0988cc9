"""The web pages' routes: their static files, and each page's own module."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aiohttp import web

from psp_server.web import merchant_routes, pairing_routes, static_code_routes
from psp_server.web.layout import STATIC_DIR, asset_version

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# A URL that names the file's digest never changes: a browser keeps it a year.
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def _assets() -> dict[str, Asset]:
    """The static files, read once: a few kilobytes, served from memory."""
    found = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in _TYPES:
            found[path.name] = Asset(
                path.read_bytes(), _TYPES[path.suffix], f'"{asset_version(path.name)}"'
            )
    return found


async def static_file(request: web.Request) -> web.StreamResponse:
    asset = _assets().get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    versioned = request.query.get("v") == asset.etag.strip('"')
    headers = {
        "ETag": asset.etag,
        "Cache-Control": _IMMUTABLE if versioned else "no-cache",
        "Content-Type": asset.content_type,
    }
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/static/{name}", static_file)
    merchant_routes.add_routes(app)
    pairing_routes.add_routes(app)
    static_code_routes.add_routes(app)
