"""The server's settings: flags over environment over defaults, every problem
reported at once (in the manner of Mopidy's config schemas)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from scan2pay_common import setting_values
from scan2pay_common.errors import InvalidValue
from scan2pay_common.mqtt_url import MqttTarget

from .errors import ConfigError

ENV_PREFIX = "SCAN2PAY_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    db: str = "scan2pay.db"
    mqtt: MqttTarget | None = None
    # None: derived from the address the server listens on.
    public_url: str | None = None
    max_amount: int = 100_000_000
    sweep_interval: float = 1.0
    log_level: str = "INFO"
    # Webhooks (docs/webhooks.md): the first retry's delay, the longest
    # delay, how long after the first attempt retries go on, and how long
    # an attempt may take, all in seconds.
    webhook_retry_base: float = 10.0
    webhook_retry_max: float = 3600.0
    webhook_retry_window: float = 86_400.0
    webhook_timeout: float = 10.0

    def require_public_url(self) -> str:
        if self.public_url is None:
            raise ConfigError(["public_url: not derived yet; build the app with make_app"])
        return self.public_url


# name -> (environment variable, hint shown with an error)
FIELDS: dict[str, tuple[str, str]] = {
    "host": ("SCAN2PAY_HOST", "an address to listen on, like 127.0.0.1"),
    "port": ("SCAN2PAY_PORT", "a TCP port from 0 to 65535 (0 picks a free one)"),
    "db": ("SCAN2PAY_DB", "a SQLite file path, like /var/lib/scan2pay/psp.db"),
    "mqtt": ("SCAN2PAY_MQTT", "mqtt://host:port, or 'none' to publish no events"),
    "public_url": ("SCAN2PAY_PUBLIC_URL", "the URL wallets reach, like HTTPS://PAY.EXAMPLE.COM"),
    "max_amount": ("SCAN2PAY_MAX_AMOUNT", "the largest amount in minor units, a positive integer"),
    "sweep_interval": ("SCAN2PAY_SWEEP_INTERVAL", "seconds between expiry sweeps, like 1.0"),
    "log_level": ("SCAN2PAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    "webhook_retry_base": (
        "SCAN2PAY_WEBHOOK_RETRY_BASE",
        "seconds before a failed webhook's first retry, like 10",
    ),
    "webhook_retry_max": (
        "SCAN2PAY_WEBHOOK_RETRY_MAX",
        "the longest delay between webhook retries in seconds, like 3600",
    ),
    "webhook_retry_window": (
        "SCAN2PAY_WEBHOOK_RETRY_WINDOW",
        "seconds after the first attempt that webhook retries go on, like 86400",
    ),
    "webhook_timeout": (
        "SCAN2PAY_WEBHOOK_TIMEOUT",
        "seconds a webhook endpoint has to answer, like 10",
    ),
}


def load(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """``flags`` holds what the command line gave (None where it gave nothing)."""
    env = os.environ if env is None else env
    raw: dict[str, str] = {}
    for name, (var, _) in FIELDS.items():
        if flags.get(name) is not None:
            raw[name] = str(flags[name])
        elif var in env:
            raw[name] = env[var]

    problems: list[str] = []
    values: dict[str, Any] = {}

    def problem(name: str, message: str) -> None:
        var, hint = FIELDS[name]
        problems.append(f"{name} ({var}): {message}; expected {hint}")

    def take(name: str, parse: Callable[[str], object]) -> None:
        if name in raw:
            try:
                values[name] = parse(raw[name])
            except InvalidValue as exc:
                problem(name, exc.message)

    if "host" in raw:
        values["host"] = raw["host"]
    if "port" in raw:
        port = _int(raw["port"])
        if port is None or not 0 <= port <= 65535:
            problem("port", f"{raw['port']!r} is not a port")
        else:
            values["port"] = port
    if "db" in raw:
        if not raw["db"]:
            problem("db", "empty")
        else:
            values["db"] = raw["db"]
    mqtt = raw.get("mqtt", "mqtt://127.0.0.1:1883")
    if mqtt.lower() not in ("", "none", "off"):
        try:
            values["mqtt"] = MqttTarget.parse(mqtt)
        except InvalidValue as exc:
            problem("mqtt", exc.message)
    take("public_url", setting_values.http_url)
    if "max_amount" in raw:
        maximum = _int(raw["max_amount"])
        if maximum is None or maximum < 1:
            problem("max_amount", f"{raw['max_amount']!r} is not a positive integer")
        else:
            values["max_amount"] = maximum
    take("sweep_interval", lambda raw: setting_values.seconds(raw, low=0.01, high=3600))
    take("log_level", setting_values.log_level)
    take("webhook_retry_base", lambda raw: setting_values.seconds(raw, low=0.01, high=3600))
    take("webhook_retry_max", lambda raw: setting_values.seconds(raw, low=0.01, high=86_400))
    take("webhook_retry_window", lambda raw: setting_values.seconds(raw, low=0.01, high=2_592_000))
    take("webhook_timeout", lambda raw: setting_values.seconds(raw, low=0.1, high=300))

    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def with_default_public_url(settings: Settings, port: int) -> Settings:
    """The public URL when none was given: the listening address, in upper
    case so that the whole URL stays in the QR's compact alphanumeric mode."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return replace(settings, public_url=f"HTTP://{host.upper()}:{port}")


def _int(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None
