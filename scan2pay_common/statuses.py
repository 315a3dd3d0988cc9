"""The words a checkout's status and its events are written in, on the wire
and in the database. They are defined here and nowhere else: the PSP's
core, the messages, the terminal and the cashier bridge import them.

Each word set has two forms. The Literal types (``CheckoutStatus``,
``FinalStatus``, ``EventType``) type the fields of wire messages, whose
values come from JSON as plain strings, so that mypy checks every word a
module writes against them. The StrEnums (``Status``, ``Event``) are the
same words as members, for code that names them (the PSP's core); being
``str``, a member equals and hashes as its word. Importing this module
checks that the two forms hold the same words.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, TypeGuard, get_args

CheckoutStatus = Literal["pending", "paid", "cancelled", "expired"]
# The statuses a checkout never leaves.
FinalStatus = Literal["paid", "cancelled", "expired"]
EventType = Literal[
    "checkout.paid",
    "checkout.cancelled",
    "checkout.expired",
    "checkout.refunded",
    "checkout.created",
]

CHECKOUT_STATUSES: tuple[CheckoutStatus, ...] = get_args(CheckoutStatus)
FINAL_STATUSES: tuple[FinalStatus, ...] = get_args(FinalStatus)
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Event(StrEnum):
    PAID = "checkout.paid"
    CANCELLED = "checkout.cancelled"
    EXPIRED = "checkout.expired"
    REFUNDED = "checkout.refunded"
    # Only of a checkout a customer typed at a till's printed code, whose
    # terminal had no show_qr for it (docs/mqtt.md, "Checkout events").
    CREATED = "checkout.created"


# The event each final status announces.
EVENT_FOR_STATUS: dict[str, EventType] = {
    "paid": "checkout.paid",
    "cancelled": "checkout.cancelled",
    "expired": "checkout.expired",
}

# The checkout status each event carries. A refund gives money back without
# changing the status: a refunded checkout is still paid, partly or wholly
# refunded as its refunded_amount says. A created checkout is pending.
STATUS_FOR_EVENT: dict[str, CheckoutStatus] = {
    "checkout.paid": "paid",
    "checkout.cancelled": "cancelled",
    "checkout.expired": "expired",
    "checkout.refunded": "paid",
    "checkout.created": "pending",
}


def is_checkout_status(value: str) -> TypeGuard[CheckoutStatus]:
    """Whether a status read from outside is one this version knows."""
    return value in CHECKOUT_STATUSES


def is_final_status(value: str) -> TypeGuard[FinalStatus]:
    return value in FINAL_STATUSES


def same_words(words: tuple[str, ...], members: type[StrEnum]) -> bool:
    """Whether a Literal's words are an enum's members, in the same order."""
    return words == tuple(member.value for member in members)


def _check_tables() -> None:
    problems = []
    if not same_words(CHECKOUT_STATUSES, Status):
        problems.append("CheckoutStatus and Status")
    if not same_words(EVENT_TYPES, Event):
        problems.append("EventType and Event")
    if set(EVENT_FOR_STATUS) != set(FINAL_STATUSES):
        problems.append("EVENT_FOR_STATUS and FinalStatus")
    if set(STATUS_FOR_EVENT) != set(EVENT_TYPES):
        problems.append("STATUS_FOR_EVENT and EventType")
    if problems:
        raise RuntimeError("the status words disagree: " + "; ".join(problems))


_check_tables()
