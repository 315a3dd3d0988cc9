"""The terminal's two calls to the PSP while it pairs (docs/pairing.md):
start a pairing, and poll it with the device secret. With the standard
library's urllib in a worker thread, as ``psp_lookup`` asks about codes.

Over ``https://`` urllib verifies the PSP's certificate against the
system's trust store; the settings the PSP hands over (the broker
password among them) travel only inside that TLS. Over plain ``http://``
anyone on the way could read or change them: the PSP's URL should be
``https://`` wherever the network is not the shop's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from scan2pay_common import jsonfields as jf
from scan2pay_common import pairing_codes
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import parse_public_keys
from scan2pay_common.timefmt import from_rfc3339

TIMEOUT_SECONDS = 10
MAX_ANSWER = 256 * 1024


class PspError(Exception):
    """The PSP could not be asked, or said no; ``code`` is its error code
    (or ``unreachable``), ``message`` what to show."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def new_device_secret() -> str:
    """256 random bits, kept on the device: only its hash leaves at the start."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    pairing_id: str
    code: str
    url: str
    expires_at: int
    poll_interval: float


@dataclass(frozen=True, slots=True)
class Waiting:
    expires_at: int


@dataclass(frozen=True, slots=True)
class Settings:
    """What an approved pairing hands over, checked."""

    merchant_id: str
    merchant_name: str
    terminal_id: str
    mqtt_url: str = field(repr=False)
    mqtt_ca: str | None
    psp_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StillPaired:
    pass


@dataclass(frozen=True, slots=True)
class Unpaired:
    pass


Polled = Waiting | Settings | StillPaired | Unpaired


async def start(psp_url: str, secret: str) -> Started:
    body = await asyncio.to_thread(
        _post, f"{psp_url.rstrip('/')}/v1/pairings", {"device_secret_hash": secret_hash(secret)}
    )
    try:
        code = jf.string(body, "code", maximum=20)
        pairing_codes.parse_code(code)
        url = jf.string(body, "pairing_url", maximum=2000)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise InvalidValue("invalid_answer", "pairing_url is not an http(s) URL")
        interval = body.get("poll_interval", 1)
        if not isinstance(interval, int) or not 1 <= interval <= 60:
            raise InvalidValue("invalid_answer", "poll_interval is not 1 to 60 seconds")
        return Started(
            pairing_id=_pairing_id(jf.string(body, "pairing_id", maximum=64)),
            code=code,
            url=url,
            expires_at=from_rfc3339(body["expires_at"]),
            poll_interval=float(interval),
        )
    except (KeyError, TypeError, InvalidValue) as exc:
        raise PspError("invalid_answer", f"the PSP's answer is not a pairing: {exc}") from exc


async def poll(psp_url: str, pairing_id: str, secret: str) -> Polled:
    url = f"{psp_url.rstrip('/')}/v1/pairings/{quote(_pairing_id(pairing_id), safe='')}/poll"
    body = await asyncio.to_thread(_post, url, {"device_secret": secret})
    try:
        status = jf.string(body, "status", maximum=20)
        if status == "pending":
            return Waiting(from_rfc3339(body["expires_at"]))
        if status == "approved":
            return _settings(body["settings"])
        if status == "paired":
            return StillPaired()
        if status == "revoked":
            return Unpaired()
        raise InvalidValue("invalid_answer", f"unknown status {status!r}")
    except (KeyError, TypeError, InvalidValue) as exc:
        raise PspError("invalid_answer", f"the PSP's answer about the pairing: {exc}") from exc


def _settings(raw: object) -> Settings:
    if not isinstance(raw, dict):
        raise InvalidValue("invalid_answer", "settings is not an object")
    mqtt_url = jf.string(raw, "mqtt_url", maximum=2000)
    target = MqttTarget.parse(mqtt_url)
    if not target.username or not target.password:
        raise InvalidValue("invalid_answer", "mqtt_url carries no account")
    ca = raw.get("mqtt_ca")
    if ca is not None:
        if not isinstance(ca, str) or "-----BEGIN CERTIFICATE-----" not in ca:
            raise InvalidValue("invalid_answer", "mqtt_ca is not a PEM certificate")
        try:
            ssl.create_default_context(cadata=ca)
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidValue("invalid_answer", f"mqtt_ca does not load: {exc}") from exc
    keys = raw.get("psp_keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidValue("invalid_answer", "psp_keys lists no key")
    public = [key.get("public_key") if isinstance(key, dict) else None for key in keys]
    parsed = parse_public_keys(public)
    name = raw.get("merchant_name")
    return Settings(
        merchant_id=check_merchant_id(raw.get("merchant_id")),
        merchant_name=name if isinstance(name, str) else "",
        terminal_id=check_terminal_id(raw.get("terminal_id")),
        mqtt_url=mqtt_url,
        mqtt_ca=ca,
        psp_keys=tuple(key.text for key in parsed),
    )


def _pairing_id(value: str) -> str:
    if not value or len(value) > 64 or not all(c.isalnum() or c in "._-" for c in value):
        raise InvalidValue("invalid_answer", "not a pairing id")
    return value


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise PspError("unreachable", "the PSP's URL is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - http(s), checked above
        url,
        method="POST",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s), checked above
            return jf.load_object(response.read(MAX_ANSWER), what="the PSP's answer")
    except urllib.error.HTTPError as exc:
        raise _refusal(exc) from None
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        # HTTPException: a port that does not speak HTTP, a body cut short.
        raise PspError("unreachable", f"the PSP cannot be reached: {exc}") from exc
    except InvalidValue as exc:
        raise PspError("invalid_answer", exc.message) from exc


def _refusal(exc: urllib.error.HTTPError) -> PspError:
    try:
        error = jf.load_object(exc.read(MAX_ANSWER)).get("error")
    except (InvalidValue, OSError, http.client.HTTPException):
        error = None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return PspError(error["code"], str(error.get("message", "")), exc.code)
    return PspError("http_error", f"the PSP answered {exc.code}", exc.code)
