"""The frame every page shares: the head, the stylesheet, the page's scripts
and the data they start from.

Asset URLs are relative to the page (``root`` is the way back to the
application's root), so that the pages also work behind a proxy that serves
the PSP under a path prefix. They carry a digest of the file, so a browser
never runs a script from an older release against a newer page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import orjson

STATIC_DIR = Path(__file__).with_name("static")
STATIC_PREFIX = "/static/"


@cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def asset(name: str, root: str) -> str:
    return f"{root}static/{name}?v={asset_version(name)}"


def page_data(data: Mapping[str, Any]) -> str:
    """``data`` as JSON a script reads from the page. ``<`` is escaped so that
    nothing in it (a merchant named ``</script>``) can end the element."""
    return orjson.dumps(data).decode().replace("<", "\\u003c")


def page(
    *,
    title: str,
    body: str,
    root: str,
    scripts: Sequence[str] = (),
    data: Mapping[str, Any] | None = None,
) -> str:
    """A whole HTML document. ``body`` is markup already escaped by its caller."""
    tags = [
        f'<link rel="icon" href="{asset("icon.svg", root)}" type="image/svg+xml">',
        f'<link rel="stylesheet" href="{asset("site.css", root)}">',
    ]
    tags += [f'<script src="{asset(name, root)}" defer></script>' for name in scripts]
    if data is not None:
        tags.append(f'<script type="application/json" id="page-data">{page_data(data)}</script>')
    head = "\n".join(tags)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{escape(title)}</title>
{head}
</head>
<body>
{body}
</body></html>
"""


def notice_and_error(notice: str, error: str, *, error_id: str) -> str:
    """What a page says above its form: ``notice`` as a status and ``error``
    as an alert (``error_id``, for a field's ``aria-errormessage``), each
    escaped; empty when neither is given."""
    said = f'<p id="notice" class="message" role="status">{escape(notice)}</p>\n' if notice else ""
    if error:
        said += f'<p id="{error_id}" class="message error" role="alert">{escape(error)}</p>\n'
    return said
