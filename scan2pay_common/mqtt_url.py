"""``mqtt://[user[:password]@]host[:port]``, or ``mqtts://`` for TLS: where a
part finds its broker."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .errors import InvalidValue

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
_SCHEMES = {"mqtt": False, "mqtts": True}


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # mqtts://: TLS, verifying the broker's certificate (scan2pay_common.mqtt_client).
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        hint = "an mqtt:// or mqtts:// URL (like mqtt://127.0.0.1:1883)"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidValue("invalid_mqtt_url", f"{url!r} is not {hint}: {exc}") from exc
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise InvalidValue("invalid_mqtt_url", f"{url!r} is not {hint}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidValue("invalid_mqtt_url", f"{url!r} has a path or query; drop it")
        if port == 0:
            raise InvalidValue("invalid_mqtt_url", f"{url!r}: port 0 is not a broker's port")
        tls = _SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=(DEFAULT_TLS_PORT if tls else DEFAULT_PORT) if port is None else port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def __str__(self) -> str:
        # Never the password: this string goes into logs.
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


# paho leaves Nagle's algorithm on, and a small PUBLISH sent just after a
# PUBACK then waits for the peer's delayed ACK, some 40 ms a hop.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
