"""What the terminal shows, as plain values, and the words of each screen.

Pure: no MQTT, no device. The daemon decides which screen is current; the
renderer (``terminal.render``) turns a screen into pixels, and ``content``
turns it into words for displays that draw by command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from hardware.base import Content
from scan2pay_common.money import format_display

Outcome = Literal["paid", "cancelled", "expired", "refunded"]


@dataclass(frozen=True, slots=True)
class EarlierPayment:
    """A payment at this till the terminal missed while it was away, too
    old to say aloud (``speak_within``): shown on the idle screen instead."""

    checkout_id: str
    amount: int
    currency: str
    paid_at: int  # milliseconds since the epoch, the PSP's event's time

    def __post_init__(self) -> None:
        if self.amount < 0 or self.paid_at < 0:
            raise ValueError("an earlier payment has a non-negative amount and time")


# The earlier payments an idle screen keeps, newest first; it counts the rest.
EARLIER_KEPT = 10


@dataclass(frozen=True, slots=True)
class IdleScreen:
    merchant_name: str
    # The till's printed code as its sticker says it ("Counter 1 · 4A3928").
    till: str | None = None
    # Missed payments not yet seen, newest first (at most EARLIER_KEPT),
    # and how many there were in all.
    earlier: tuple[EarlierPayment, ...] = ()
    earlier_count: int = 0

    def __post_init__(self) -> None:
        if len(self.earlier) > EARLIER_KEPT or self.earlier_count < len(self.earlier):
            raise ValueError("an idle screen keeps a few earlier payments and counts them all")


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


def paid_at_text(paid_at: int, now: int) -> str:
    """When an earlier payment was made, in the terminal's time zone:
    "08:14" today, "4 Dec 21:50" on another day."""
    then, today = time.localtime(paid_at / 1000), time.localtime(now / 1000)
    clock = f"{then.tm_hour:02d}:{then.tm_min:02d}"
    if (then.tm_year, then.tm_yday) == (today.tm_year, today.tm_yday):
        return clock
    return f"{then.tm_mday} {MONTHS[then.tm_mon - 1]} {clock}"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RECEIVED_EARLIER = "Received earlier"


def earlier_text(payment: EarlierPayment, now: int) -> str:
    """One missed payment: "€12.34 · 08:14"."""
    amount = format_display(payment.amount, payment.currency)
    return f"{amount} · {paid_at_text(payment.paid_at, now)}"


def earlier_summary(screen: IdleScreen, now: int) -> str | None:
    """The missed payments in one line, for the smallest panels: the
    newest, and how many there were if several ("Earlier (3): €12.34 08:14")."""
    if not screen.earlier:
        return None
    newest = screen.earlier[0]
    count = f" ({screen.earlier_count})" if screen.earlier_count > 1 else ""
    amount = format_display(newest.amount, newest.currency)
    return f"Earlier{count}: {amount} {paid_at_text(newest.paid_at, now)}"


def content(view: View, now: int) -> Content:
    screen = view.screen
    lines: list[str] = []
    qr_url: str | None = None
    if isinstance(screen, IdleScreen):
        kind = "idle"
        lines = [screen.merchant_name, "Ready"]
        if screen.till:
            lines.append(screen.till)
        if screen.earlier:
            lines.append(RECEIVED_EARLIER)
            lines += [earlier_text(payment, now) for payment in screen.earlier]
            if screen.earlier_count > len(screen.earlier):
                lines.append(f"+{screen.earlier_count - len(screen.earlier)} more")
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
