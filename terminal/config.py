"""The terminal's settings: flags over environment over a TOML file over
defaults, with every problem reported at once, each with a hint."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hardware import luma_form
from scan2pay_common import setting_values
from scan2pay_common.config_layers import Layers, read_toml
from scan2pay_common.errors import InvalidValue
from scan2pay_common.free_text import check_free_text
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import PublicKey, parse_public_keys

from .announce_text import LANGUAGES


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
    # What the till's printed code says beside its QR, like "Counter 1 ·
    # 4A3928" (docs/static-qr.md): shown when idle, for the merchant to
    # compare with the sticker on the counter.
    till: str | None = None
    psp_url: str | None = None
    idle_after: float = 10.0
    log_level: str = "INFO"
    # The PSP's public signing keys (several during a rotation). Empty: the
    # terminal believes its display topic and events unchecked, as before
    # signing; production terminals must have them (docs/signing.md).
    psp_public_keys: tuple[PublicKey, ...] = ()
    # A PEM file of the CA that signed the broker's certificate (a private
    # CA, as examples/mosquitto makes); None: the system's trust store.
    mqtt_ca: str | None = None
    # Written by pairing (docs/pairing.md): with them the terminal asks the
    # PSP, when the broker refuses its account, whether it was unpaired.
    pairing_id: str | None = None
    device_secret: str | None = field(default=None, repr=False)
    # "emv" when the merchant's QR codes are EMV payloads (docs/emv.md): the
    # terminal then checks at start that its panel can show them.
    qr_format: str = "url"
    # The soundbox (docs/terminal.md, "Sound"): where it speaks (null: it
    # does not), in which language, how loud, with or without a chime.
    audio: str = "null"
    language: str = "en"
    volume: int = 100
    chime: bool = True
    # Its record of what it said and its cache of spoken parts.
    sound_dir: str = "/var/lib/scan2pay/sound"
    speech: str = "espeak-ng"
    # A payment heard this long after it was made is said as "Received
    # earlier"; one older than speak_within is not said at all.
    late_after: float = 30.0
    speak_within: float = 300.0


class DisplayTooSmall(ConfigError):
    """The panel cannot show the QR codes ``qr_format`` says will come."""


@dataclass(frozen=True, slots=True)
class Unpaired:
    """A terminal without credentials: it pairs itself with the PSP at
    ``psp_url`` (docs/pairing.md), then runs as a ``TerminalConfig``."""

    psp_url: str
    display: str = "console"
    name: str = "scan2pay"
    log_level: str = "INFO"


DEFAULT_MQTT = "mqtt://127.0.0.1:1883"

# key -> (flag, environment variable, hint)
FIELDS: dict[str, tuple[str, str, str]] = {
    "mqtt": ("--mqtt", "SCAN2PAY_MQTT", "mqtts://[user:password@]host[:port], or mqtt://"),
    # The same variable every part reads (scan2pay_common.mqtt_client).
    "mqtt_ca": (
        "--mqtt-ca",
        "SCAN2PAY_MQTT_CA",
        "a PEM file of the CA that signed the broker's certificate, like /etc/scan2pay/mqtt-ca.crt",
    ),
    "merchant": ("--merchant", "SCAN2PAY_MERCHANT", "the merchant id the PSP gave, like mer_…"),
    "terminal": ("--terminal", "SCAN2PAY_TERMINAL", "this terminal's id, like lane-1"),
    "display": (
        "--display",
        "SCAN2PAY_DISPLAY",
        "ssd1306:i2c:1:0x3C, png:DIR, console, … or a luma driver with luma.examples' keys",
    ),
    "name": ("--name", "SCAN2PAY_NAME", "the shop name shown when idle"),
    "till": (
        "--till",
        "SCAN2PAY_TILL",
        "the till's label and its printed code's short id, as on the sticker, shown when idle,"
        " like 'Counter 1 · 4A3928'",
    ),
    "psp_url": ("--psp-url", "SCAN2PAY_PSP_URL", "the PSP's public URL, like HTTPS://PAY.EXAMPLE"),
    "idle_after": ("--idle-after", "SCAN2PAY_IDLE_AFTER", "seconds an outcome stays, like 10"),
    "log_level": ("--log-level", "SCAN2PAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    "qr_format": (
        "--qr-format",
        "SCAN2PAY_QR_FORMAT",
        "url, or emv when the merchant's QR codes are EMV payloads (docs/emv.md)",
    ),
    "psp_public_key": (
        "--psp-public-key",
        "SCAN2PAY_PSP_PUBLIC_KEY",
        "the PSP's key as `psp-server keys show` prints it, ed25519:…; several comma-separated",
    ),
    # luma.examples' display keys (--interface, --i2c-port, ...), beside the
    # compact display value: hardware/luma_form.py.
    **luma_form.FIELDS,
    "audio": (
        "--audio",
        "SCAN2PAY_AUDIO",
        "where payments are announced: alsa[:DEVICE], wav:DIR or null (the default)",
    ),
    "language": (
        "--language",
        "SCAN2PAY_LANGUAGE",
        "the announcements' language: " + ", ".join(LANGUAGES) + " (default en)",
    ),
    "volume": ("--volume", "SCAN2PAY_VOLUME", "the announcements' volume, 0 to 100 (default 100)"),
    "chime": ("--chime", "SCAN2PAY_CHIME", "on or off: a chime before each announcement"),
    "sound_dir": (
        "--sound-dir",
        "SCAN2PAY_SOUND_DIR",
        "a folder for the record of what was said and the spoken parts' cache"
        " (default /var/lib/scan2pay/sound)",
    ),
    "speech": (
        "--speech",
        "SCAN2PAY_SPEECH",
        "espeak-ng (the default), or piper:MODEL.onnx where piper is installed",
    ),
    "late_after": (
        "--late-after",
        "SCAN2PAY_LATE_AFTER",
        "seconds after which a payment is said as received earlier, like 30",
    ),
    "speak_within": (
        "--speak-within",
        "SCAN2PAY_SPEAK_WITHIN",
        "seconds after which a missed payment is no longer said, like 300",
    ),
    "pairing_id": ("--pairing-id", "SCAN2PAY_PAIRING_ID", "what scan2pay-terminal pair wrote"),
    "device_secret": (
        "--device-secret",
        "SCAN2PAY_DEVICE_SECRET",
        "what scan2pay-terminal pair wrote",
    ),
}
# Written by pairing into the config file, never typed: no flags for them
# (a secret on a command line shows in the process list).
NO_FLAG = frozenset({"pairing_id", "device_secret"})
# What pairing writes, and unpairing takes out of the config file.
PAIRING_KEYS = (
    "mqtt",
    "merchant",
    "terminal",
    "psp_public_key",
    "mqtt_ca",
    "pairing_id",
    "device_secret",
)
_DEVICE_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")
_PAIRING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class DisplaySettings:
    """What drawing on the display needs, without the rest of the config."""

    display: str = "console"
    psp_url: str | None = None


@dataclass(frozen=True, slots=True)
class StickerSettings:
    """What printing a sticker takes from the settings: the device, and the
    shop's name and the terminal's id where they are set."""

    display: str = "console"
    name: str | None = None
    terminal_id: str | None = None


def load(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    check_display: Any = None,
) -> TerminalConfig:
    """``flags`` maps field names to what the command line gave (None: not
    given). ``check_display`` validates a display spec without opening it."""
    loaded = _load(flags, config_file, env, check_display, pairing=False, force=False)
    if not isinstance(loaded, TerminalConfig):  # pragma: no cover - pairing=False never says so
        raise ConfigError(["merchant, terminal: missing"])
    return loaded


def load_for_service(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    check_display: Any = None,
    pair: bool = False,
) -> TerminalConfig | Unpaired:
    """``load``, except that a terminal with neither merchant nor terminal
    but with the PSP's URL is ``Unpaired``: it pairs itself. ``pair``: it
    pairs again, whatever credentials it has (``scan2pay-terminal pair``)."""
    return _load(flags, config_file, env, check_display, pairing=True, force=pair)


def _load(
    flags: Mapping[str, Any],
    config_file: str | None,
    env: Mapping[str, str] | None,
    check_display: Any,
    *,
    pairing: bool,
    force: bool,
) -> TerminalConfig | Unpaired:
    # A terminal about to pair may have no file yet: pairing makes it.
    missing = pairing and config_file is not None and not os.path.exists(config_file)
    layers = _gather(flags, None if missing else config_file, env)
    raw, values = layers.raw, layers.values

    layers.take("psp_url", setting_values.http_url)
    unpaired = pairing and (force or not ({"merchant", "terminal"} & set(raw)))
    if unpaired:
        return _unpaired(layers, check_display, config_file)
    layers.take("mqtt", lambda url: MqttTarget.parse(str(url)))
    if "mqtt" not in raw:
        values["mqtt"] = MqttTarget.parse(DEFAULT_MQTT)
    for key in ("merchant", "terminal"):
        if key not in raw:
            how = " (or give psp_url and the terminal pairs itself)" if pairing else ""
            layers.problem(key, "missing" + how)
    layers.take("merchant", check_merchant_id, to="merchant_id")
    layers.take("terminal", check_terminal_id, to="terminal_id")
    _take_display(layers, check_display)
    layers.take("name", _name)
    layers.take("till", _till)
    layers.take("idle_after", lambda text: setting_values.seconds(text, low=0.5, high=3600))
    layers.take("log_level", setting_values.log_level)
    layers.take("qr_format", _qr_format)
    layers.take("psp_public_key", parse_public_keys, to="psp_public_keys")
    layers.take("mqtt_ca", _ca_file)
    layers.take("pairing_id", _pairing_id)
    layers.take("device_secret", _device_secret)
    _take_sound(layers)
    if layers.problems:
        raise ConfigError(layers.problems)
    return TerminalConfig(**values)


def load_display(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    check_display: Any = None,
) -> DisplaySettings:
    """The display's settings alone, from the same layers as ``load``: for
    drawing on a panel before the rest (the broker, the ids) is set up."""
    layers = _gather(flags, config_file, env)
    _take_display(layers, check_display)
    layers.take("psp_url", setting_values.http_url)
    if layers.problems:
        raise ConfigError(layers.problems)
    return DisplaySettings(**layers.values)


def load_sticker_settings(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    check_display: Any = None,
) -> StickerSettings:
    """The settings a sticker's print defaults from, from the same layers as
    ``load``; nothing else need be set (a sticker may be printed before
    the terminal is paired)."""
    layers = _gather(flags, config_file, env)
    _take_display(layers, check_display)
    layers.take("name", _name)
    layers.take("terminal", check_terminal_id, to="terminal_id")
    if layers.problems:
        raise ConfigError(layers.problems)
    return StickerSettings(**layers.values)


def _gather(
    flags: Mapping[str, Any], config_file: str | None, env: Mapping[str, str] | None
) -> Layers:
    env = os.environ if env is None else env
    try:
        from_file = None if config_file is None else read_toml(config_file)
    except InvalidValue as exc:
        raise ConfigError([exc.message]) from exc
    return Layers.gather(FIELDS, flags, env=env, from_file=from_file, file_name=config_file)


def _take_display(layers: Layers, check: Any) -> None:
    """``display``, in the compact form or as a luma driver with luma's own
    keys; both end in the one compact value the daemon opens."""
    given = {key: layers.raw[key] for key in luma_form.KEYS if key in layers.raw}
    composed = luma_form.compose(layers.raw.get("display"), given)
    for key, message in composed.problems:
        layers.problem(key, message)
    if composed.spec is not None and not composed.problems:
        layers.raw["display"] = composed.spec
        layers.take("display", lambda spec: _display(spec, check))


def _unpaired(layers: Layers, check_display: Any, config_file: str | None) -> Unpaired:
    """Only what the pairing screen needs; the rest is read once paired."""
    values = layers.values
    if "psp_url" not in layers.raw:
        layers.problem("psp_url", "missing: the terminal pairs itself with the PSP at this URL")
    if config_file is None:
        layers.problems.append(
            "--config: missing: pairing writes the terminal's settings to this file"
        )
    _take_display(layers, check_display)
    layers.take("name", _name)
    layers.take("log_level", setting_values.log_level)
    if layers.problems:
        raise ConfigError(layers.problems)
    shown = {key: values[key] for key in ("display", "name", "log_level") if key in values}
    return Unpaired(psp_url=values["psp_url"], **shown)


def _qr_format(raw: object) -> str:
    if raw not in ("url", "emv"):
        raise InvalidValue("invalid_setting", "must be url or emv")
    return str(raw)


def _till(raw: object) -> str:
    return check_free_text(str(raw).strip(), field="till", code="invalid_setting", maximum=40)


def _take_sound(layers: Layers) -> None:
    layers.take("audio", _audio)
    layers.take("language", _language)
    layers.take("volume", _volume)
    layers.take("chime", setting_values.on_off)
    layers.take("sound_dir", lambda raw: _path(raw, "a folder"))
    layers.take("speech", _speech)
    layers.take("late_after", lambda text: setting_values.seconds(text, low=1, high=3600))
    layers.take("speak_within", lambda text: setting_values.seconds(text, low=1, high=86400))


def _audio(raw: object) -> str:
    from hardware.audio import parse_audio_spec
    from hardware.errors import AudioSpecError

    try:
        parse_audio_spec(str(raw))
    except AudioSpecError as exc:
        raise InvalidValue("invalid_setting", str(exc)) from None
    return str(raw).strip()


def _language(raw: object) -> str:
    if raw not in LANGUAGES:
        raise InvalidValue("invalid_setting", f"{raw!r} is not a language the terminal speaks")
    return str(raw)


def _volume(raw: object) -> int:
    try:
        volume = int(str(raw), 10)
    except ValueError:
        raise InvalidValue("invalid_setting", f"{raw!r} is not a whole number") from None
    if isinstance(raw, bool) or not 0 <= volume <= 100:
        raise InvalidValue("invalid_setting", "must be 0 to 100")
    return volume


def _path(raw: object, what: str) -> str:
    text = str(raw).strip()
    if not text or "\0" in text:
        raise InvalidValue("invalid_setting", f"is not {what}")
    return text


def _speech(raw: object) -> str:
    text = str(raw).strip()
    if text == "espeak-ng":
        return text
    kind, _, model = text.partition(":")
    if kind != "piper" or not model:
        raise InvalidValue("invalid_setting", f"{raw!r} is neither espeak-ng nor piper:MODEL")
    if not os.path.isfile(model):
        raise InvalidValue("invalid_setting", f"{model}: no such voice model")
    return text


def _pairing_id(raw: object) -> str:
    if not isinstance(raw, str) or not _PAIRING_ID.fullmatch(raw):
        raise InvalidValue("invalid_setting", "is not a pairing id that pairing wrote")
    return raw


def _device_secret(raw: object) -> str:
    if not isinstance(raw, str) or not _DEVICE_SECRET.fullmatch(raw):
        raise InvalidValue("invalid_setting", "is not a device secret that pairing wrote")
    return raw


def _display(spec: object, check: Any) -> str:
    if check is not None:
        try:
            check(str(spec))
        except Exception as exc:  # the hardware layer's own message says what is wrong
            raise InvalidValue("invalid_setting", str(exc)) from exc
    return str(spec)


def _ca_file(raw: object) -> str:
    """A CA file that loads, checked now rather than at each connection."""
    path = str(raw)
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise InvalidValue("invalid_setting", f"{path}: no such file") from None
    except PermissionError:
        raise InvalidValue("invalid_setting", f"{path}: not readable by this user") from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidValue("invalid_setting", f"{path}: not a PEM certificate ({exc})") from None
    return path


def _name(raw: object) -> str:
    name = str(raw).strip()
    if not name or len(name) > 60:
        raise InvalidValue("invalid_setting", "must be 1 to 60 characters")
    return name


def is_bare_qr_url(payload: str, psp_url: str | None) -> bool:
    """A payload that is just a QR URL under the PSP's public URL; scheme and
    host compare without case, as URLs do, and a QR often upper-cases them.
    Its shape only: it names no merchant or terminal, and a terminal with the
    PSP's key shows none (``terminal.trust.qr_problem``)."""
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
