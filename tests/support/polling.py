"""Waiting for something another process does: a real broker, server or
terminal answers in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], what: str = "", timeout: float = 10.0) -> Any:
    """``check()``'s first true value, asked every 10 ms, or an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout}s: {what or check}")
