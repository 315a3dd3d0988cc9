"""The one shape of every error the PSP answers over HTTP:
``{"error": {"code": ..., "message": ...}}`` (docs/api.md).

The API's error middleware, the rate limiter, the refusals an
Idempotency-Key stores and replays, and the board's JSON answers all
build it here, so that they cannot drift apart. A stored refusal is
replayed as the bytes first sent, even by a later version of the PSP,
so these bytes must not change."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

JSON = "application/json"


def error_body(code: str, message: str) -> bytes:
    """The envelope's bytes. ``json.dumps`` with its default separators:
    the bytes every answer and every stored refusal has always had."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = JSON,
) -> web.Response:
    """The answer carrying the envelope. ``headers`` go out before the
    Content-Type, in their order; ``content_type`` is the API's plain
    ``application/json`` unless the caller's pages say otherwise."""
    return web.Response(
        status=status,
        body=error_body(code, message),
        headers={**(headers or {}), "Content-Type": content_type},
    )
