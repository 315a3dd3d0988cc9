"""One blocking GET of a JSON object from the PSP, for the terminal's
questions to it (``terminal.psp_lookup``: what a QR URL is for;
``terminal.catch_up``: the events it missed).

With the standard library's urllib, run in a worker thread by the caller,
not aiohttp: one small GET now and then does not need an HTTP stack that
costs the daemon some 20 MB of its Pi Zero's 512 MB. Only http(s) URLs are
asked: urlopen would also read file: and ftp: URLs.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue
from scan2pay_common.logtext import loggable


class NoAnswer(Exception):
    """The PSP gave no JSON object; the message says why, with any text
    from outside already escaped and bounded, ready for the log."""


def get_json_object(
    url: str,
    *,
    what: str,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON object at ``url`` (``what`` names it in errors), read to at
    most ``max_bytes``. Blocking. Raises ``NoAnswer``."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise NoAnswer("the URL is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - http(s), checked above
        url, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s), checked above
            return jf.load_object(response.read(max_bytes), what=what)
    except urllib.error.HTTPError as exc:
        raise NoAnswer(f"the PSP answered {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise NoAnswer(f"the PSP is unreachable: {loggable(exc)}") from None
    except http.client.InvalidURL as exc:
        # urllib refuses a control character in the URL (one that came from
        # the display topic, say), which would otherwise end the caller's
        # task unheard.
        raise NoAnswer(f"the URL cannot be asked: {loggable(exc)}") from None
    except InvalidValue as exc:
        raise NoAnswer(f"the PSP's answer is not JSON: {loggable(exc.message)}") from None
