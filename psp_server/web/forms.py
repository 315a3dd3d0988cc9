"""Reading a posted form without trusting its bytes."""

from __future__ import annotations

from aiohttp import web


async def read_form(request: web.Request) -> dict[str, str]:
    """The form's text fields; an empty form when its body is not text
    aiohttp can decode (it raises UnicodeDecodeError on bytes that are not
    UTF-8), so that a mangled form is refused like a missing field rather
    than answered 500."""
    try:
        posted = await request.post()
    except ValueError:
        return {}
    return {key: value for key, value in posted.items() if isinstance(value, str)}
