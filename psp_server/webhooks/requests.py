"""The webhook API's request bodies and parameters, read strictly."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from psp_server.webhooks.destinations import DestinationPolicy
from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue

URL_MAX = 2048
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Printable ASCII, no spaces: a URL is ASCII (an international host name
# goes in its xn-- form), and a control character has no business in one.
_URL_CHARS = re.compile(r"[!-~]+")
_DIGITS = re.compile(r"[0-9]{1,4}")


def _invalid(message: str) -> InvalidValue:
    return InvalidValue("invalid_url", message, field="url")


def check_url(value: object, destinations: DestinationPolicy) -> str:
    """An absolute http(s) URL with a host and no credentials or fragment,
    whose host is not an address that ``destinations`` refuses."""
    if not isinstance(value, str):
        raise _invalid("url must be a string")
    if not 1 <= len(value) <= URL_MAX:
        raise _invalid(f"url must be 1 to {URL_MAX} characters")
    if not _URL_CHARS.fullmatch(value):
        raise _invalid("url must be printable ASCII with no spaces")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"url is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("url must start with http:// or https://")
    if "@" in parts.netloc:
        raise _invalid("url must not contain a user name or password")
    if not parts.hostname:
        raise _invalid("url must name a host")
    if "#" in value:
        raise _invalid("url must not contain a fragment (#...)")
    if port == 0:
        raise _invalid("url must not use port 0")
    refusal = destinations.check_host(parts.hostname)
    if refusal is not None:
        raise _invalid(refusal)
    return value


def parse_create(body: dict[str, Any], destinations: DestinationPolicy) -> str:
    """``{"url": ...}`` -> the URL."""
    jf.check_fields(body, required=frozenset({"url"}))
    return check_url(body["url"], destinations)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidValue(
            "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit"
        )
    return int(raw)
