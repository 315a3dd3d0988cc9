"""Parsers for the values every part's settings share. Each takes what a
flag, an environment variable or a TOML file gave and returns the value, or
raises ``InvalidValue`` whose message the config loader reports with a hint."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from .errors import InvalidValue

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(raw: object) -> str:
    level = str(raw).upper()
    if level not in LOG_LEVELS:
        raise InvalidValue("invalid_setting", f"{raw!r} is not a level")
    return level


def seconds(raw: object, *, low: float, high: float) -> float:
    value = float("nan")
    # A flag or the environment gives a string, TOML a number (or anything).
    if isinstance(raw, str | int | float):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if not low <= value <= high:
        raise InvalidValue("invalid_setting", f"{raw!r} is not from {low:g} to {high:g}")
    return value


_ON = frozenset({"on", "true", "yes", "1"})
_OFF = frozenset({"off", "false", "no", "0"})


def on_off(raw: object) -> bool:
    """A switch: on, true, yes or 1; off, false, no or 0 (any case). TOML
    gives a bool as it is."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _ON | _OFF:
        return text in _ON
    raise InvalidValue("invalid_setting", f"{raw!r} is neither on nor off")


def http_url(raw: object) -> str:
    """An http(s) base URL with no query or fragment, without a trailing slash."""
    url = str(raw).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidValue("invalid_setting", f"{raw!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise InvalidValue("invalid_setting", f"{raw!r} has a query or fragment")
    return url
