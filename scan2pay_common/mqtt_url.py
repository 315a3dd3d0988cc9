"""``mqtt://[user[:password]@]host[:port]``: where a part finds its broker."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .errors import InvalidValue

DEFAULT_PORT = 1883


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidValue("invalid_mqtt_url", f"{url!r} is not an mqtt:// URL: {exc}") from exc
        if parts.scheme != "mqtt" or not parts.hostname:
            raise InvalidValue(
                "invalid_mqtt_url", f"{url!r} is not an mqtt:// URL (like mqtt://127.0.0.1:1883)"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidValue("invalid_mqtt_url", f"{url!r} has a path or query; drop it")
        if port == 0:
            raise InvalidValue("invalid_mqtt_url", f"{url!r}: port 0 is not a broker's port")
        return cls(
            host=parts.hostname,
            port=DEFAULT_PORT if port is None else port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        # Never the password: this string goes into logs.
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{user}{host}:{self.port}"


# paho leaves Nagle's algorithm on, and a small PUBLISH sent just after a
# PUBACK then waits for the peer's delayed ACK, some 40 ms a hop.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
