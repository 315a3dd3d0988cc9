"""The bridge's settings: flags over environment over a TOML file over
defaults, every problem reported at once, each with a hint.

The merchant key is a secret. It comes from the environment or from a key
file, never from a flag (a command line is visible to every user of the PC in
``ps``), and no message here ever contains it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scan2pay_common import setting_values
from scan2pay_common.config_layers import Layers, read_toml
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
    try:
        from_file = None if config_file is None else read_toml(config_file)
    except InvalidValue as exc:
        raise ConfigError([exc.message]) from exc
    refusal = (
        f"must not be in a config file; put the key in a file named by key_file, or in {KEY_ENV}"
    )
    layers = Layers.gather(
        FIELDS,
        flags,
        env=env,
        from_file=from_file,
        file_name=config_file,
        not_in_file=dict.fromkeys(_SECRET_KEYS, refusal),
    )
    # layers.source says where each value came from, so that a relative
    # key_file in the TOML file is read next to that file.
    raw, layer, values, problems = layers.raw, layers.source, layers.values, layers.problems

    layers.take("psp_url", setting_values.http_url)
    values.setdefault("psp_url", DEFAULT_PSP_URL)
    layers.take("mqtt", lambda url: MqttTarget.parse(str(url)))
    if "mqtt" not in raw:
        values["mqtt"] = MqttTarget.parse(DEFAULT_MQTT)
    layers.take("terminal", check_terminal_id, to="terminal_id")
    if require_terminal and "terminal" not in raw:
        layers.problem("terminal", "missing")
    layers.take("screen_timeout", lambda v: setting_values.seconds(v, low=0.1, high=300))
    layers.take("psp_timeout", lambda v: setting_values.seconds(v, low=0.1, high=300))
    layers.take("poll_interval", lambda v: setting_values.seconds(v, low=0.1, high=60))
    layers.take("log_level", setting_values.log_level)
    log_level = values.pop("log_level", None)

    merchant_key, key_problem = _merchant_key(raw, layer, env, config_file)
    if key_problem is not None:
        problems.append(key_problem)
    if problems or merchant_key is None:  # no key comes with its problem, told above
        raise ConfigError(problems)
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
