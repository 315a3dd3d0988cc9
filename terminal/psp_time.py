"""Asks the PSP for the time: ``GET {psp_url}/healthz``, the cheapest thing
it serves, for its ``Date`` header (any HTTP server sends one, also a proxy
in front of it, also with an error status). ``terminal.clock`` learns the
offset from it.

With the standard library's urllib in a worker thread, as ``psp_lookup``,
for the same reason: a GET every few minutes does not need aiohttp's 20 MB.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from scan2pay_common.logtext import loggable

from .clock import Clock

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5


async def learn_psp_time(psp_url: str, clock: Clock) -> bool:
    """True when the PSP's answer told the clock its time."""
    return await asyncio.to_thread(_learn, psp_url, clock)


def _learn(psp_url: str, clock: Clock) -> bool:
    url = f"{psp_url.rstrip('/')}/healthz"
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return False  # the configuration checks psp_url; urlopen would also read file:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s), checked above
    sent = clock.wall()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s), checked above
            date = response.headers.get("Date")
    except urllib.error.HTTPError as exc:
        date = exc.headers.get("Date")  # an error answer still tells the time
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        log.info("the PSP's time not known yet: %s", loggable(exc))
        return False
    received = clock.wall()
    if clock.learn(date, sent, received) is None:
        log.info("the PSP's answer tells no time: Date %s", loggable(date))
        return False
    return True
