"""The identifiers that travel in URLs, MQTT topics and payloads.

Each is checked so that it can never break a topic (no ``/``, ``+`` or ``#``)
or a log line.
"""

from __future__ import annotations

import re

from .errors import InvalidValue

ORDER_ID_MAX = 64
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def _check_safe(value: object, *, field: str, code: str, maximum: int) -> str:
    if not isinstance(value, str):
        raise InvalidValue(code, f"{field} must be a string", field=field)
    if not value:
        raise InvalidValue(code, f"{field} must not be empty", field=field)
    if len(value) > maximum:
        raise InvalidValue(code, f"{field} must be at most {maximum} characters", field=field)
    if not _SAFE.fullmatch(value):
        raise InvalidValue(
            code, f"{field} may contain only letters, digits, '.', '_' and '-'", field=field
        )
    return value


def check_order_id(value: object) -> str:
    return _check_safe(value, field="order_id", code="invalid_order_id", maximum=ORDER_ID_MAX)


def check_terminal_id(value: object) -> str:
    return _check_safe(value, field="terminal_id", code="invalid_terminal_id", maximum=64)


def check_merchant_id(value: object) -> str:
    return _check_safe(value, field="merchant_id", code="invalid_merchant_id", maximum=64)


def check_checkout_id(value: object) -> str:
    return _check_safe(value, field="checkout_id", code="invalid_checkout_id", maximum=64)
