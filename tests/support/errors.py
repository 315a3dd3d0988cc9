"""What every refusal of the API looks like."""

from __future__ import annotations

from typing import Any


def assert_error(answer: tuple[int, Any], status: int, code: str) -> None:
    """``answer`` (status, body) is the error envelope and nothing else:
    ``status``, ``code`` and a message that says something."""
    got_status, body = answer
    assert (got_status, body) == (
        status,
        {"error": {"code": code, "message": body["error"]["message"]}},
    ), body
    assert body["error"]["message"]
