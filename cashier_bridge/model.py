"""The values the bridge's flow takes and gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from scan2pay_common.mqtt_url import MqttTarget

Outcome = Literal["paid", "cancelled", "expired"]


@dataclass(frozen=True)
class BridgeConfig:
    psp_url: str  # e.g. http://127.0.0.1:8080 (API base; no trailing slash)
    merchant_key: str = field(repr=False)
    mqtt: MqttTarget
    terminal_id: str | None = None  # the default terminal
    screen_timeout: float = 5.0  # seconds to wait for the terminal to show the QR
    psp_timeout: float = 10.0  # seconds per PSP request
    psp_retries: int = 3  # attempts of a create on a network error
    poll_interval: float = 3.0  # seconds between checks at the PSP while waiting for the outcome
    mqtt_timeout: float = 5.0  # seconds for the broker to accept the connection or a publish


@dataclass(frozen=True)
class CheckoutOrder:
    order_id: str
    amount: int  # minor units
    currency: str
    terminal_id: str
    expires_in: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Step:
    """One thing that happened, for a line of output, the local API's stream
    and the demo's timeline. ``at`` is time.monotonic()."""

    name: str  # created, shown, terminal_offline, paid, cancelled, expired, ...
    message: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutResult:
    checkout_id: str
    outcome: Outcome
    checkout: dict[str, Any]  # the checkout as GET /v1/checkouts/{id} confirmed it
    steps: tuple[Step, ...]
