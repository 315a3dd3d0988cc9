"""The terminal's settings: flags over environment over a TOML file over
defaults, with every problem reported at once, each with a hint."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scan2pay_common import setting_values
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.mqtt_url import MqttTarget


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    mqtt: MqttTarget
    merchant_id: str
    terminal_id: str
    display: str = "console"
    name: str = "scan2pay"
    psp_url: str | None = None
    idle_after: float = 10.0
    log_level: str = "INFO"


# key -> (flag, environment variable, hint)
FIELDS: dict[str, tuple[str, str, str]] = {
    "mqtt": ("--mqtt", "SCAN2PAY_MQTT", "mqtt://[user:password@]host:port"),
    "merchant": ("--merchant", "SCAN2PAY_MERCHANT", "the merchant id the PSP gave, like mer_…"),
    "terminal": ("--terminal", "SCAN2PAY_TERMINAL", "this terminal's id, like lane-1"),
    "display": ("--display", "SCAN2PAY_DISPLAY", "ssd1306:i2c:1:0x3C, png:DIR, console, …"),
    "name": ("--name", "SCAN2PAY_NAME", "the shop name shown when idle"),
    "psp_url": ("--psp-url", "SCAN2PAY_PSP_URL", "the PSP's public URL, like HTTPS://PAY.EXAMPLE"),
    "idle_after": ("--idle-after", "SCAN2PAY_IDLE_AFTER", "seconds an outcome stays, like 10"),
    "log_level": ("--log-level", "SCAN2PAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
}


def load(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    check_display: Any = None,
) -> TerminalConfig:
    """``flags`` maps field names to what the command line gave (None: not
    given). ``check_display`` validates a display spec without opening it."""
    env = os.environ if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            with Path(config_file).open("rb") as handle:
                from_file = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError([f"config file {config_file}: {exc.strerror or exc}"]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {config_file}: not TOML: {exc}"]) from exc
        for key in sorted(set(from_file) - set(FIELDS)):
            problems.append(f"{config_file}: unknown key {key!r}; known: {', '.join(FIELDS)}")
        raw.update({k: v for k, v in from_file.items() if k in FIELDS})
    for key, (_, var, _) in FIELDS.items():
        if var in env:
            raw[key] = env[var]
    raw.update({k: v for k, v in flags.items() if k in FIELDS and v is not None})

    def problem(key: str, message: str) -> None:
        flag, var, hint = FIELDS[key]
        problems.append(f"{key} ({flag}, {var}): {message}; expected {hint}")

    values: dict[str, Any] = {}

    def take(key: str, field: str, parse: Callable[[Any], object]) -> None:
        if key in raw:
            try:
                values[field] = parse(raw[key])
            except InvalidValue as exc:
                problem(key, exc.message)

    try:
        values["mqtt"] = MqttTarget.parse(str(raw.get("mqtt", "mqtt://127.0.0.1:1883")))
    except InvalidValue as exc:
        problem("mqtt", exc.message)
    for key, check, field in (
        ("merchant", check_merchant_id, "merchant_id"),
        ("terminal", check_terminal_id, "terminal_id"),
    ):
        if key not in raw:
            problem(key, "missing")
            continue
        try:
            values[field] = check(raw[key])
        except InvalidValue as exc:
            problem(key, exc.message)
    if "display" in raw:
        spec = str(raw["display"])
        if check_display is not None:
            try:
                check_display(spec)
            except Exception as exc:  # the hardware layer's own message says what is wrong
                problem("display", str(exc))
        values["display"] = spec
    if "name" in raw:
        name = str(raw["name"]).strip()
        if not name or len(name) > 60:
            problem("name", "must be 1 to 60 characters")
        else:
            values["name"] = name
    take("psp_url", "psp_url", setting_values.http_url)
    take("idle_after", "idle_after", lambda raw: setting_values.seconds(raw, low=0.5, high=3600))
    take("log_level", "log_level", setting_values.log_level)
    if problems:
        raise ConfigError(problems)
    return TerminalConfig(**values)


def is_bare_qr_url(payload: str, psp_url: str | None) -> bool:
    """A payload that is just a QR URL under the PSP's public URL; scheme and
    host compare without case, as URLs do, and a QR often upper-cases them."""
    if psp_url is None:
        return False
    text = payload.strip()
    prefix = psp_url.rstrip("/") + "/Q/"
    if len(text) <= len(prefix) or any(c.isspace() for c in text):
        return False
    head = urlsplit(text)
    want = urlsplit(prefix)
    return (
        head.scheme.lower() == want.scheme.lower()
        and head.netloc.lower() == want.netloc.lower()
        and head.path.startswith(want.path)
        and len(head.path) > len(want.path)
        and "/" not in head.path[len(want.path) :]
    )
