"""The checkout's life as a table of transitions, with no I/O.

In the manner of h11's ``_state.py``: the storage layers read a checkout,
ask ``decide`` what an action does to it, and write what it says. Every
database backend calls the same rules, so they cannot drift apart.

    pending --pay-----> paid
    pending --cancel--> cancelled
    pending --expire--> expired

A pending checkout whose ``expires_at`` has passed is expired whether or not
the sweeper has marked it yet.

A refund moves money back but not the status: a paid checkout stays paid,
however much of it was refunded (its ``refunded_amount`` says how much).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Action(StrEnum):
    PAY = "pay"
    CANCEL = "cancel"
    EXPIRE = "expire"


TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.PENDING, Action.PAY): Status.PAID,
    (Status.PENDING, Action.CANCEL): Status.CANCELLED,
    (Status.PENDING, Action.EXPIRE): Status.EXPIRED,
}

# Why an action is refused in a final state. A pair in neither table is a
# harmless repeat (cancelling a cancelled checkout, expiring a paid one) that
# changes nothing and is not an error.
REFUSALS: dict[tuple[Status, Action], str] = {
    (Status.PAID, Action.PAY): "already_paid",
    (Status.CANCELLED, Action.PAY): "cancelled",
    (Status.EXPIRED, Action.PAY): "expired",
    (Status.PAID, Action.CANCEL): "already_paid",
    (Status.EXPIRED, Action.CANCEL): "expired",
}

FINAL_STATUSES = frozenset({Status.PAID, Status.CANCELLED, Status.EXPIRED})


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write: ``new_status`` (None: leave the row as it is) and, when
    the action is refused, why. Both can be set: paying a checkout that ran
    out of time refuses the payment and records the expiry."""

    new_status: Status | None
    refusal: str | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None and self.new_status is not None


def effective_status(status: Status, *, expires_at: int, now: int) -> Status:
    if status is Status.PENDING and now >= expires_at:
        return Status.EXPIRED
    return status


def decide(status: Status, action: Action, *, expires_at: int, now: int) -> Decision:
    current = effective_status(status, expires_at=expires_at, now=now)
    lapsed = Status.EXPIRED if current is not status else None
    target = TRANSITIONS.get((current, action))
    if target is not None:
        return Decision(target)
    return Decision(lapsed, REFUSALS.get((current, action)))


@dataclass(frozen=True, slots=True)
class Purse:
    """What the payment rules need to know of the paying wallet."""

    currency: str
    balance: int


def decide_payment(
    status: Status, *, expires_at: int, now: int, amount: int, currency: str, purse: Purse
) -> Decision:
    """``decide`` for PAY, then the wallet's checks, in the order a wallet
    user can act on: a code that can't be paid says so before the funds do."""
    decision = decide(status, Action.PAY, expires_at=expires_at, now=now)
    if not decision.accepted:
        return decision
    if purse.currency != currency:
        return Decision(None, "currency_mismatch")
    if purse.balance < amount:
        return Decision(None, "insufficient_funds")
    return decision


# Why a refund is refused, by the checkout's status: only money that was paid
# can go back. Paid is the one status not listed: it may be refunded.
REFUND_REFUSALS: dict[Status, str] = {
    Status.PENDING: "not_paid",
    Status.CANCELLED: "not_paid",
    Status.EXPIRED: "not_paid",
}


def decide_refund(status: Status, *, paid: int, refunded: int, amount: int) -> str | None:
    """The refusal for refunding ``amount`` of a checkout that was ``paid``
    and has had ``refunded`` given back already, or None to go ahead. The
    status speaks first: "not paid" is more useful than "too much"."""
    refusal = REFUND_REFUSALS.get(status)
    if refusal is not None:
        return refusal
    if amount < 1:
        return "invalid_amount"
    if amount > paid - refunded:
        return "refund_exceeds_payment"
    return None
