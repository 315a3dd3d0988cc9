"""What the terminal shows, as plain values, and the words of each screen.

Pure: no MQTT, no device. The daemon decides which screen is current; the
renderer (``terminal.render``) turns a screen into pixels, and ``content``
turns it into words for displays that draw by command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hardware.base import Content
from scan2pay_common.money import format_display

Outcome = Literal["paid", "cancelled", "expired", "refunded"]


@dataclass(frozen=True, slots=True)
class IdleScreen:
    merchant_name: str
    # The till's printed code as its sticker says it ("Counter 1 · 4A3928").
    till: str | None = None


@dataclass(frozen=True, slots=True)
class QrScreen:
    checkout_id: str | None  # None for a bare URL the PSP could not describe
    qr_url: str
    amount: int | None = None
    currency: str | None = None
    expires_at: int | None = None  # milliseconds since the epoch
    order_id: str | None = None
    # An EMV merchant's payload, which carries qr_url (docs/emv.md).
    qr_payload: str | None = None
    # For a checkout a customer typed at a printed till code, from the PSP's
    # signed checkout.created: "Sticker 4A3928". The customer is on its
    # payment page already, so the screen says it waits rather than "Scan
    # to pay"; None for a cashier's QR.
    via: str | None = None

    @property
    def typed(self) -> bool:
        """Whether this is a checkout typed at a printed code, not a cashier's."""
        return self.via is not None

    @property
    def encoded(self) -> str:
        """The exact string the QR encodes: the EMV payload, else the URL."""
        return self.qr_payload if self.qr_payload is not None else self.qr_url


@dataclass(frozen=True, slots=True)
class OutcomeScreen:
    checkout_id: str
    outcome: Outcome
    amount: int | None = None
    currency: str | None = None
    # For a checkout a customer typed at a printed till code: "Sticker
    # 4A3928", the code's short id from the PSP's signed event, for the
    # merchant to compare with the sticker on the counter (docs/static-qr.md).
    via: str | None = None


Screen = IdleScreen | QrScreen | OutcomeScreen


@dataclass(frozen=True, slots=True)
class View:
    """A screen plus what the daemon knows around it: a banner such as
    "No connection" is drawn over the screen without replacing it."""

    screen: Screen
    banner: str | None = None


# What a typed checkout's screen says instead of "Scan to pay".
WAITING = "Waiting for payment"

OUTCOME_TEXT: dict[str, str] = {
    "paid": "Paid",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "refunded": "Refunded",
}


def amount_text(amount: int | None, currency: str | None) -> str | None:
    if amount is None or currency is None:
        return None
    return format_display(amount, currency)


def countdown_text(expires_at: int | None, now: int) -> str | None:
    """``4:59`` left, never negative."""
    if expires_at is None:
        return None
    left = max(0, (expires_at - now + 999) // 1000)
    return f"{left // 60}:{left % 60:02d}"


def content(view: View, now: int) -> Content:
    screen = view.screen
    lines: list[str] = []
    qr_url: str | None = None
    if isinstance(screen, IdleScreen):
        kind = "idle"
        lines = [screen.merchant_name, "Ready"]
        if screen.till:
            lines.append(screen.till)
    elif isinstance(screen, QrScreen):
        kind = "qr"
        qr_url = screen.encoded
        lines = [
            line
            for line in (
                amount_text(screen.amount, screen.currency),
                WAITING if screen.typed else "Scan to pay",
                screen.via,
                countdown_text(screen.expires_at, now),
            )
            if line
        ]
    else:
        kind = screen.outcome
        lines = [OUTCOME_TEXT[screen.outcome]]
        amount = amount_text(screen.amount, screen.currency)
        if amount:
            lines.append(amount)
        if screen.via:
            lines.append(screen.via)
    if view.banner:
        lines.append(view.banner)
    return Content(qr_url=qr_url, lines=tuple(lines), kind=kind)
