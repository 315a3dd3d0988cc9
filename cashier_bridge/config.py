"""The bridge's settings: flags over environment over a TOML file over
defaults, every problem reported at once, each with a hint.

The merchant key is a secret. It comes from the environment or from a key
file, never from a flag (a command line is visible to every user of the PC in
``ps``), and no message here ever contains it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scan2pay_common import setting_values
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_terminal_id
from scan2pay_common.mqtt_url import MqttTarget

from .errors import BadInput
from .model import BridgeConfig

KEY_ENV = "SCAN2PAY_MERCHANT_KEY"
KEY_FILE_ENV = "SCAN2PAY_MERCHANT_KEY_FILE"
DEFAULT_PSP_URL = "http://127.0.0.1:8080"
DEFAULT_MQTT = "mqtt://127.0.0.1:1883"

# key -> (flag, environment variable, hint)
FIELDS: dict[str, tuple[str, str, str]] = {
    "psp_url": ("--psp-url", "SCAN2PAY_PSP_URL", "the PSP's API URL, like http://127.0.0.1:8080"),
    "key_file": ("--key-file", KEY_FILE_ENV, "a file that holds only the merchant key mk_…"),
    "mqtt": ("--mqtt", "SCAN2PAY_MQTT", "mqtt://[user:password@]host:port"),
    "terminal": (
        "--terminal",
        "SCAN2PAY_TERMINAL",
        "the terminal's id, like lane-1 (serve: the default one)",
    ),
    "screen_timeout": (
        "--screen-timeout",
        "SCAN2PAY_SCREEN_TIMEOUT",
        "seconds the terminal has to show the QR, like 5",
    ),
    "psp_timeout": ("--psp-timeout", "SCAN2PAY_PSP_TIMEOUT", "seconds per PSP request, like 10"),
    "poll_interval": (
        "--poll-interval",
        "SCAN2PAY_POLL_INTERVAL",
        "seconds between checks at the PSP while waiting, like 3",
    ),
    "log_level": ("--log-level", "SCAN2PAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
}

# Keys people might try for the secret itself; each gets a pointed refusal.
_SECRET_KEYS = frozenset({"merchant_key", "key", "api_key"})
# A bearer token: printable ASCII, no spaces (it goes into an HTTP header).
_KEY = re.compile(r"[!-~]+")


class ConfigError(BadInput):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    bridge: BridgeConfig
    log_level: str | None = None  # None: the command's own default


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"config file {path}: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path}: not TOML: {exc}"]) from exc


def _read_key_file(path: Path) -> tuple[str | None, str | None]:
    """(key, problem): the problem names the file, never what it holds."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, f"{path} is not a text file"
    if not text:
        return None, f"{path} is empty"
    if not _KEY.fullmatch(text):
        return None, f"{path} must hold only the key (no spaces, no other lines)"
    return text, None


def load(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    require_terminal: bool = False,
) -> Settings:
    """``flags`` maps the keys of FIELDS to what the command line gave (None:
    not given). ``require_terminal``: a checkout needs one, serve does not."""
    env = os.environ if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    # Where each value came from, so that a relative key_file in the TOML
    # file is read next to that file, not in the current directory.
    layer: dict[str, str] = {}
    if config_file is not None:
        from_file = _read_toml(config_file)
        for key in sorted(set(from_file) & _SECRET_KEYS):
            problems.append(
                f"{config_file}: {key!r} must not be in a config file; put the key in a file "
                f"named by key_file, or in {KEY_ENV}"
            )
        for key in sorted(set(from_file) - set(FIELDS) - _SECRET_KEYS):
            problems.append(f"{config_file}: unknown key {key!r}; known: {', '.join(FIELDS)}")
        for key, value in from_file.items():
            if key in FIELDS:
                raw[key], layer[key] = value, "file"
    for key, (_, var, _) in FIELDS.items():
        if var in env:
            raw[key], layer[key] = env[var], "env"
    for key, value in flags.items():
        if key in FIELDS and value is not None:
            raw[key], layer[key] = value, "flag"

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

    take("psp_url", "psp_url", setting_values.http_url)
    values.setdefault("psp_url", DEFAULT_PSP_URL)
    try:
        values["mqtt"] = MqttTarget.parse(str(raw.get("mqtt", DEFAULT_MQTT)))
    except InvalidValue as exc:
        problem("mqtt", exc.message)
    take("terminal", "terminal_id", check_terminal_id)
    if require_terminal and "terminal" not in raw:
        problem("terminal", "missing")
    take("screen_timeout", "screen_timeout", lambda v: setting_values.seconds(v, low=0.1, high=300))
    take("psp_timeout", "psp_timeout", lambda v: setting_values.seconds(v, low=0.1, high=300))
    take("poll_interval", "poll_interval", lambda v: setting_values.seconds(v, low=0.1, high=60))
    log_level = None
    if "log_level" in raw:
        try:
            log_level = setting_values.log_level(raw["log_level"])
        except InvalidValue as exc:
            problem("log_level", exc.message)

    merchant_key, key_problem = _merchant_key(raw, layer, env, config_file)
    if key_problem is not None:
        problems.append(key_problem)
    if problems:
        raise ConfigError(problems)
    assert merchant_key is not None
    return Settings(BridgeConfig(merchant_key=merchant_key, **values), log_level=log_level)


def _merchant_key(
    raw: Mapping[str, Any],
    layer: Mapping[str, str],
    env: Mapping[str, str],
    config_file: str | None,
) -> tuple[str | None, str | None]:
    """(key, problem). A --key-file flag wins over the environment; the
    environment's key wins over the config file's key_file."""
    hint = (
        f"set {KEY_ENV}, or name a file that holds it with --key-file, {KEY_FILE_ENV} "
        "or key_file in the config file (never a flag: others can read a command line)"
    )
    where = layer.get("key_file")
    if KEY_ENV in env and where != "flag":
        if where == "env":
            return None, f"merchant key: both {KEY_ENV} and {KEY_FILE_ENV} are set; set one"
        if not _KEY.fullmatch(env[KEY_ENV].strip()):
            return None, f"merchant key: {KEY_ENV} is empty or holds spaces; {hint}"
        return env[KEY_ENV].strip(), None
    if where is None:
        return None, f"merchant key: missing; {hint}"
    path = Path(str(raw["key_file"])).expanduser()
    if where == "file" and config_file is not None and not path.is_absolute():
        path = Path(config_file).parent / path
    key, problem = _read_key_file(path)
    if problem is not None:
        flag, var, _ = FIELDS["key_file"]
        return None, f"key_file ({flag}, {var}): {problem}"
    return key, None
