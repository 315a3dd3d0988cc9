"""The one reader of ``Authorization: Bearer <token>``.

Every token the PSP issues is printable ASCII. aiohttp hands bytes that
are not UTF-8 on as lone surrogates; a header holding anything but a
printable ASCII token is no token at all, refused like a wrong one rather
than reaching code that hashes it."""

from __future__ import annotations

from aiohttp import web


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not is_token_text(token):
        return None
    return token


def is_token_text(text: str) -> bool:
    """Non-empty printable ASCII without spaces: the shape of every secret
    the PSP issues (keys, tokens, cookies)."""
    return bool(text) and text.isascii() and text.isprintable() and " " not in text
