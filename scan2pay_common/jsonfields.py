"""Strict reading of JSON objects: unknown fields, missing fields and wrong
types are each a clear error, never a KeyError or a silent default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import InvalidValue


def load_object(raw: bytes | str, *, what: str = "body") -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValue("invalid_json", f"{what} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise InvalidValue("invalid_json", f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidValue("invalid_json", f"{what} must be a JSON object")
    return value


def check_fields(
    obj: Mapping[str, Any], *, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> None:
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        raise InvalidValue(
            "unknown_field", f"unknown field(s): {', '.join(unknown)}", field=unknown[0]
        )
    missing = sorted(required - set(obj))
    if missing:
        raise InvalidValue(
            "missing_field", f"missing field(s): {', '.join(missing)}", field=missing[0]
        )


def string(obj: Mapping[str, Any], name: str, *, maximum: int = 1024) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise InvalidValue("invalid_type", f"{name} must be a string", field=name)
    if len(value) > maximum:
        raise InvalidValue(
            "invalid_type", f"{name} must be at most {maximum} characters", field=name
        )
    return value


def integer(obj: Mapping[str, Any], name: str) -> int:
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue("invalid_type", f"{name} must be an integer", field=name)
    return value


def boolean(obj: Mapping[str, Any], name: str) -> bool:
    value = obj[name]
    if not isinstance(value, bool):
        raise InvalidValue("invalid_type", f"{name} must be true or false", field=name)
    return value


def dumps(obj: Any) -> bytes:
    """Compact, key-ordered JSON: the same object always gives the same bytes."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
