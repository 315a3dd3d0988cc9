"""The server's settings: flags over environment over defaults, every problem
reported at once (in the manner of Mopidy's config schemas)."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from psp_server.core.errors import ConfigError
from psp_server.storage import backends
from scan2pay_common import setting_values
from scan2pay_common.errors import InvalidValue
from scan2pay_common.mqtt_url import MqttTarget

ENV_PREFIX = "SCAN2PAY_"


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's shape: up to ``count`` requests at once (the burst),
    refilled at ``count`` per ``period`` seconds. Written ``30/10s``."""

    count: int
    period: float

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


_RATE = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|m|min|h)?", re.IGNORECASE)
_UNIT = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate(raw: str) -> Rate | None:
    """``30/10s``, ``300/min``, ``5/s`` or ``100/60`` (seconds); ``off`` for no limit."""
    text = raw.strip()
    if text.lower() in ("off", "none", "0"):
        return None
    match = _RATE.fullmatch(text)
    if match is None or (match.group(2) is None and match.group(3) is None):
        raise InvalidValue("invalid_setting", f"{raw!r} is not a rate like 30/10s")
    count = int(match.group(1))
    period = float(match.group(2) or 1) * _UNIT[(match.group(3) or "s").lower()]
    if not 1 <= count <= 1_000_000 or not 0.001 <= period <= 86_400:
        raise InvalidValue("invalid_setting", f"{raw!r} is out of range")
    return Rate(count, period)


LOG_FORMATS = ("text", "json")


def parse_log_format(raw: str) -> str:
    text = raw.strip().lower()
    if text not in LOG_FORMATS:
        raise InvalidValue("invalid_setting", f"{raw!r} is not a log format")
    return text


Network = IPv4Network | IPv6Network
# Reports a setting's problem: its name and what is wrong.
Problem = Callable[[str, str], None]


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``127.0.0.0/8,::1/128``: networks, comma-separated (an address alone
    is a network of one); ``none`` or nothing for none. Every bad entry is
    named in the one error."""
    text = raw.strip()
    if text.lower() in ("", "none", "off"):
        return ()
    networks: list[Network] = []
    bad: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        try:
            network = ip_network(item, strict=True)
        except ValueError as exc:
            reason = "has host bits set" if "host bits" in str(exc) else "is not a network"
            bad.append(f"{item!r} {reason}")
            continue
        if isinstance(network, IPv6Network) and network.network_address.ipv4_mapped is not None:
            bad.append(f"{item!r} is IPv4-mapped: write the IPv4 network")
            continue
        networks.append(network)
    if bad:
        raise InvalidValue("invalid_setting", "; ".join(bad))
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    db: str = "scan2pay.db"
    mqtt: MqttTarget | None = None
    # None: derived from the address the server listens on.
    public_url: str | None = None
    # True when public_url was derived from the listening address rather
    # than given: behind a trusted proxy, each request's forwarded scheme
    # and host then make the URL (psp_server/api/guards/request_context.py).
    public_url_derived: bool = False
    max_amount: int = 100_000_000
    sweep_interval: float = 1.0
    log_level: str = "INFO"
    # "text": one line per record; "json": one JSON object per line
    # (scan2pay_common/logformat.py).
    log_format: str = "text"
    # Reverse proxies whose X-Forwarded-* (or Forwarded) and X-Request-Id
    # headers are believed (psp_server/api/guards/forwarded.py); none by
    # default, so that no client can name another address.
    trusted_proxies: tuple[Network, ...] = ()
    # Webhooks (docs/webhooks.md): the first retry's delay, the longest
    # delay, how long after the first attempt retries go on, and how long
    # an attempt may take, all in seconds.
    webhook_retry_base: float = 10.0
    webhook_retry_max: float = 3600.0
    webhook_retry_window: float = 86_400.0
    webhook_timeout: float = 10.0
    # Networks webhooks may reach although they are not public (loopback,
    # private, link-local...: psp_server/webhooks/destinations.py). None by
    # default: a merchant must not reach what only the PSP's host can.
    webhook_allow_networks: tuple[Network, ...] = ()
    # Abuse limits (psp_server/api/guards/abuse.py): token buckets per client address
    # and per bearer token on GET /Q/{code} and POST /v1/payments (None: no
    # limit), and how long a client has to send a request's body.
    rate_qr_per_ip: Rate | None = Rate(300, 60.0)
    rate_qr_per_token: Rate | None = Rate(300, 60.0)
    rate_pay_per_ip: Rate | None = Rate(3000, 60.0)
    rate_pay_per_token: Rate | None = Rate(600, 60.0)
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    # Server processes sharing the port (psp_server/runtime/workers.py); more than
    # one needs a database they can share (Backend.shared).
    workers: int = 1
    # Pairing terminals (docs/pairing.md): the broker as terminals reach it
    # (no credentials in it), the CA file that signed its certificate (None
    # when a public CA did), the folder of its passwd and acl files, and a
    # command that makes it reread them. No terminal_mqtt or no
    # mosquitto_dir: this PSP pairs no terminals.
    terminal_mqtt: MqttTarget | None = None
    terminal_mqtt_ca: Path | None = None
    mosquitto_dir: Path | None = None
    mosquitto_reload: tuple[str, ...] = ()
    # Starting a pairing, per client address; approving one on the board,
    # per address and per code tried.
    rate_pair_per_ip: Rate | None = Rate(30, 3600.0)
    rate_pair_approve_per_ip: Rate | None = Rate(10, 60.0)
    rate_pair_approve_per_code: Rate | None = Rate(5, 600.0)
    # Checkouts customers make by typing an amount at a printed till code
    # (POST /S/{code}/checkouts), per client address and per code.
    rate_static_per_ip: Rate | None = Rate(60, 60.0)
    rate_static_per_code: Rate | None = Rate(30, 60.0)

    # Observability (docs/metrics.md): GET /metrics on (the default) or
    # off; with metrics_port, served only on metrics_host:metrics_port and
    # not on the public port. /readyz says not ready once the relay's
    # oldest unpublished event is older than ready_relay_lag seconds.
    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    ready_relay_lag: float = 60.0

    def require_public_url(self) -> str:
        if self.public_url is None:
            raise ConfigError(["public_url: not derived yet; build the app with make_app"])
        return self.public_url


MAX_WORKERS = 64

_RATE_HINT = "requests per period with that many at once, like 30/10s or 300/min; or off"

# name -> (environment variable, hint shown with an error)
FIELDS: dict[str, tuple[str, str]] = {
    "host": ("SCAN2PAY_HOST", "an address to listen on, like 127.0.0.1"),
    "port": ("SCAN2PAY_PORT", "a TCP port from 0 to 65535 (0 picks a free one)"),
    "db": ("SCAN2PAY_DB", backends.forms()),
    "mqtt": ("SCAN2PAY_MQTT", "mqtt://host:port, or 'none' to publish no events"),
    "public_url": ("SCAN2PAY_PUBLIC_URL", "the URL wallets reach, like HTTPS://PAY.EXAMPLE.COM"),
    "max_amount": ("SCAN2PAY_MAX_AMOUNT", "the largest amount in minor units, a positive integer"),
    "sweep_interval": ("SCAN2PAY_SWEEP_INTERVAL", "seconds between expiry sweeps, like 1.0"),
    "log_level": ("SCAN2PAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    "log_format": (
        "SCAN2PAY_LOG_FORMAT",
        "text (one line per record) or json (one object per line)",
    ),
    "trusted_proxies": (
        "SCAN2PAY_TRUSTED_PROXIES",
        "comma-separated networks of the reverse proxies in front, like 127.0.0.1/32,::1/128;"
        " or none (the default)",
    ),
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
    "webhook_allow_networks": (
        "SCAN2PAY_WEBHOOK_ALLOW_NETWORKS",
        "comma-separated networks that webhooks may reach besides public addresses,"
        " like 127.0.0.0/8,::1/128 or 10.0.0.0/8; or none (the default)",
    ),
    "rate_qr_per_ip": ("SCAN2PAY_RATE_QR_PER_IP", _RATE_HINT),
    "rate_qr_per_token": ("SCAN2PAY_RATE_QR_PER_TOKEN", _RATE_HINT),
    "rate_pay_per_ip": ("SCAN2PAY_RATE_PAY_PER_IP", _RATE_HINT),
    "rate_pay_per_token": ("SCAN2PAY_RATE_PAY_PER_TOKEN", _RATE_HINT),
    "body_timeout": ("SCAN2PAY_BODY_TIMEOUT", "seconds a client has to send a body, like 10"),
    "header_timeout": (
        "SCAN2PAY_HEADER_TIMEOUT",
        "seconds a connection has to send a request's headers, like 10",
    ),
    "workers": (
        "SCAN2PAY_WORKERS",
        f"a number of server processes from 1 to {MAX_WORKERS};"
        f" more than 1 needs {backends.shared_names()}",
    ),
    "terminal_mqtt": (
        "SCAN2PAY_TERMINAL_MQTT",
        "the broker as paired terminals reach it, without credentials, like"
        " mqtts://broker.shop.example:8883; or none to pair no terminals",
    ),
    "terminal_mqtt_ca": (
        "SCAN2PAY_TERMINAL_MQTT_CA",
        "the PEM file of the CA that signed the broker's certificate, like"
        " /etc/mosquitto/scan2pay/certs/ca.crt; none when a public CA signed it",
    ),
    "mosquitto_dir": (
        "SCAN2PAY_MOSQUITTO_DIR",
        "the folder of the broker's passwd and acl files, like /etc/mosquitto/scan2pay,"
        " writable by psp-server",
    ),
    "mosquitto_reload": (
        "SCAN2PAY_MOSQUITTO_RELOAD",
        "a command that makes the broker reread its files, like"
        " 'sudo -n systemctl reload mosquitto'; or none",
    ),
    "rate_pair_per_ip": ("SCAN2PAY_RATE_PAIR_PER_IP", _RATE_HINT),
    "rate_pair_approve_per_ip": ("SCAN2PAY_RATE_PAIR_APPROVE_PER_IP", _RATE_HINT),
    "rate_pair_approve_per_code": ("SCAN2PAY_RATE_PAIR_APPROVE_PER_CODE", _RATE_HINT),
    "rate_static_per_ip": ("SCAN2PAY_RATE_STATIC_PER_IP", _RATE_HINT),
    "rate_static_per_code": ("SCAN2PAY_RATE_STATIC_PER_CODE", _RATE_HINT),
    "metrics": ("SCAN2PAY_METRICS", "on or off: whether GET /metrics is served"),
    "metrics_host": (
        "SCAN2PAY_METRICS_HOST",
        "the address that serves GET /metrics with metrics_port, like 127.0.0.1",
    ),
    "metrics_port": (
        "SCAN2PAY_METRICS_PORT",
        "a TCP port from 0 to 65535 for GET /metrics alone, off the public port;"
        " or none to serve it on the public port",
    ),
    "ready_relay_lag": (
        "SCAN2PAY_READY_RELAY_LAG",
        "seconds the relay's oldest unpublished event may wait before /readyz says 503, like 60",
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
        port = _port(raw["port"])
        if port is None:
            problem("port", f"{raw['port']!r} is not a port")
        else:
            values["port"] = port
    database = _database(raw.get("db", Settings().db), problem)
    if "db" in raw and database is not None:
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
    take("log_format", parse_log_format)
    take("trusted_proxies", parse_networks)
    take("webhook_retry_base", lambda raw: setting_values.seconds(raw, low=0.01, high=3600))
    take("webhook_retry_max", lambda raw: setting_values.seconds(raw, low=0.01, high=86_400))
    take("webhook_retry_window", lambda raw: setting_values.seconds(raw, low=0.01, high=2_592_000))
    take("webhook_timeout", lambda raw: setting_values.seconds(raw, low=0.1, high=300))
    take("webhook_allow_networks", parse_networks)
    for name in (
        "rate_qr_per_ip",
        "rate_qr_per_token",
        "rate_pay_per_ip",
        "rate_pay_per_token",
        "rate_pair_per_ip",
        "rate_pair_approve_per_ip",
        "rate_pair_approve_per_code",
        "rate_static_per_ip",
        "rate_static_per_code",
    ):
        take(name, parse_rate)
    take("body_timeout", lambda raw: setting_values.seconds(raw, low=0.1, high=600))
    take("header_timeout", lambda raw: setting_values.seconds(raw, low=0.1, high=600))
    if "workers" in raw:
        workers = _int(raw["workers"])
        if workers is None or not 1 <= workers <= MAX_WORKERS:
            problem("workers", f"{raw['workers']!r} is not a number of processes")
        elif workers > 1 and database is not None and not database.shared:
            problem(
                "workers",
                f"{database.why_one_process}; use {backends.shared_urls()} to run several workers",
            )
        else:
            values["workers"] = workers

    _observability(raw, values, problem)
    _pairing(raw, values, problem)

    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def _observability(raw: Mapping[str, str], values: dict[str, Any], problem: Problem) -> None:
    if "metrics" in raw:
        try:
            values["metrics"] = setting_values.on_off(raw["metrics"])
        except InvalidValue as exc:
            problem("metrics", exc.message)
    if "metrics_host" in raw:
        values["metrics_host"] = raw["metrics_host"]
    port = raw.get("metrics_port", "").strip()
    if port.lower() not in ("", "none", "off"):
        number = _port(port)
        if number is None:
            problem("metrics_port", f"{port!r} is not a port")
        elif values.get("metrics") is False:
            problem("metrics_port", "given with metrics off")
        else:
            values["metrics_port"] = number
    if "ready_relay_lag" in raw:
        try:
            values["ready_relay_lag"] = setting_values.seconds(
                raw["ready_relay_lag"], low=0.1, high=86_400
            )
        except InvalidValue as exc:
            problem("ready_relay_lag", exc.message)


def _pairing(raw: Mapping[str, str], values: dict[str, Any], problem: Problem) -> None:
    """The pairing settings, each checked, and the pair of them that only
    works together (terminal_mqtt and mosquitto_dir)."""
    terminal_mqtt = raw.get("terminal_mqtt", "")
    if terminal_mqtt.lower() not in ("", "none", "off"):
        try:
            target = MqttTarget.parse(terminal_mqtt)
        except InvalidValue as exc:
            problem("terminal_mqtt", exc.message)
        else:
            if target.username or target.password:
                problem("terminal_mqtt", "holds credentials; each terminal gets its own")
            else:
                values["terminal_mqtt"] = target
    ca = raw.get("terminal_mqtt_ca", "")
    if ca.lower() not in ("", "none", "off"):
        try:
            values["terminal_mqtt_ca"] = pem_certificate_file(ca)
        except InvalidValue as exc:
            problem("terminal_mqtt_ca", exc.message)
    folder = raw.get("mosquitto_dir", "")
    if folder:
        path = Path(folder)
        if not path.is_dir():
            problem("mosquitto_dir", f"{folder!r} is not a folder")
        elif not os.access(path, os.W_OK):
            problem("mosquitto_dir", f"{folder!r} is not writable by this user")
        else:
            values["mosquitto_dir"] = path
    command = raw.get("mosquitto_reload", "")
    if command.lower() not in ("", "none", "off"):
        try:
            values["mosquitto_reload"] = tuple(shlex.split(command))
        except ValueError as exc:
            problem("mosquitto_reload", f"{command!r} is not a command: {exc}")
    given = [
        name
        for name in ("terminal_mqtt", "mosquitto_dir")
        if raw.get(name, "").lower() not in ("", "none", "off")
    ]
    if len(given) == 1 and given[0] in values:
        other = "mosquitto_dir" if given[0] == "terminal_mqtt" else "terminal_mqtt"
        problem(other, f"missing; pairing terminals needs it with {given[0]}")


def pem_certificate_file(raw: str) -> Path:
    """A readable file holding at least one PEM certificate."""
    path = Path(raw)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidValue("invalid_setting", f"{raw!r} cannot be read: {reason}") from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InvalidValue("invalid_setting", f"{raw!r} holds no PEM certificate")
    return path


def _database(url: str, problem: Problem) -> backends.Backend | None:
    """The backend ``url`` names, or None once its problem is reported."""
    if not url:
        problem("db", "empty")
        return None
    try:
        return backends.choose(url)
    except backends.BadDatabaseURL as exc:
        problem("db", str(exc))
        return None


def with_default_public_url(settings: Settings, port: int) -> Settings:
    """The public URL when none was given: the listening address, in upper
    case so that the whole URL stays in the QR's compact alphanumeric mode."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return replace(settings, public_url=f"HTTP://{host.upper()}:{port}", public_url_derived=True)


def _int(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def _port(text: str) -> int | None:
    """``text`` as a TCP port, 0 (any free one) to 65535; None when it is not one."""
    number = _int(text)
    return number if number is not None and 0 <= number <= 65535 else None
