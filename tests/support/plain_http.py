"""HTTP to the test's own servers from code with no event loop (a test
driving processes, a thread), through urllib: no client to open or close."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """The status and JSON body of one request. It asks for JSON, so that a
    page with an HTML form for browsers (``/Q/{code}``) answers JSON too."""
    request = urllib.request.Request(  # noqa: S310 - the test's own servers on loopback
        url, method=method, data=None if body is None else json.dumps(body).encode()
    )
    request.add_header("Accept", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own servers on loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
