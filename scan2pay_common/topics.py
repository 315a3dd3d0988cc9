"""The MQTT topics of scan2pay, version 1. docs/mqtt.md is their public form.

scan2pay/v1/m/{merchant_id}/events                    PSP -> merchant
scan2pay/v1/m/{merchant_id}/t/{terminal_id}/events    PSP -> terminal
scan2pay/v1/m/{merchant_id}/t/{terminal_id}/display   cashier -> terminal
scan2pay/v1/m/{merchant_id}/t/{terminal_id}/state     terminal -> cashier

A terminal's events topic carries, byte for byte, the merchant's events
whose checkout names that terminal, so that a terminal need not wake for
every other lane's checkouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import InvalidValue
from .identifiers import check_merchant_id, check_terminal_id

PREFIX = "scan2pay/v1"

TerminalChannel = Literal["display", "state", "events"]
CHANNELS: tuple[TerminalChannel, ...] = ("display", "state", "events")


def events_topic(merchant_id: str) -> str:
    return f"{PREFIX}/m/{check_merchant_id(merchant_id)}/events"


def display_topic(merchant_id: str, terminal_id: str) -> str:
    return TerminalTopic(merchant_id, terminal_id, "display").value


def state_topic(merchant_id: str, terminal_id: str) -> str:
    return TerminalTopic(merchant_id, terminal_id, "state").value


def terminal_events_topic(merchant_id: str, terminal_id: str) -> str:
    return TerminalTopic(merchant_id, terminal_id, "events").value


def all_state_topics(merchant_id: str) -> str:
    """A subscription filter for the state of every terminal of a merchant."""
    return f"{PREFIX}/m/{check_merchant_id(merchant_id)}/t/+/state"


def every_state_topic() -> str:
    """A subscription filter for the state of every terminal of every
    merchant: the PSP's count of terminals online (psp_server/mqtt/census.py)."""
    return f"{PREFIX}/m/+/t/+/state"


@dataclass(frozen=True, slots=True)
class TerminalTopic:
    merchant_id: str
    terminal_id: str
    channel: TerminalChannel

    def __post_init__(self) -> None:
        check_merchant_id(self.merchant_id)
        check_terminal_id(self.terminal_id)
        if self.channel not in CHANNELS:
            raise InvalidValue("invalid_topic", f"unknown terminal channel {self.channel!r}")

    @property
    def value(self) -> str:
        return f"{PREFIX}/m/{self.merchant_id}/t/{self.terminal_id}/{self.channel}"

    @classmethod
    def parse(cls, topic: str) -> TerminalTopic:
        parts = topic.split("/")
        if len(parts) != 7 or parts[:3] != ["scan2pay", "v1", "m"] or parts[4] != "t":
            raise InvalidValue("invalid_topic", f"{topic!r} is not a scan2pay terminal topic")
        channel = parts[6]
        if channel not in CHANNELS:
            raise InvalidValue("invalid_topic", f"{topic!r} is not a scan2pay terminal topic")
        return cls(parts[3], parts[5], channel)
