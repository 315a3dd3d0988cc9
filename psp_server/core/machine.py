"""The checkout's life as tables, with no I/O: every rule of what an action
does to a checkout and what that moves and announces.

In the manner of h11's ``_state.py``: the storage reads a checkout, asks a
``decide…`` function, and writes what the ``Decision`` lists (the new
status, the ledger's transfers, the events) in one transaction. Every database
backend runs the same rules, so they cannot drift apart; the storage's
SQL only proves to the database that the facts the decision was made on
still hold.

    pending --pay-----> paid       wallet -> merchant, checkout.paid
    pending --cancel--> cancelled  checkout.cancelled
    pending --expire--> expired    checkout.expired

A new checkout announces nothing, unless a customer typed it at a till's
printed code (``CREATION_EVENTS``): its terminal had no ``show_qr`` for it,
so ``checkout.created`` is how the terminal hears of it while it is pending.

A pending checkout whose ``expires_at`` has passed is expired whether or not
the sweeper has marked it yet.

A refund moves money back but not the status: a paid checkout stays paid,
however much of it was refunded (its ``refunded_amount`` says how much).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from psp_server.core.effects import Account, NewEvent, Transfer
from psp_server.core.errors import Refusal
from scan2pay_common import statuses
from scan2pay_common.static_codes import Source
from scan2pay_common.statuses import EVENT_FOR_STATUS, Status

__all__ = [
    "CREATION_EVENTS",
    "FINAL_STATUSES",
    "REFUND_REFUSALS",
    "REFUSALS",
    "TRANSITIONS",
    "Action",
    "CheckoutFacts",
    "Decision",
    "Purse",
    "Status",
    "creation_events",
    "decide",
    "decide_order",
    "decide_payment",
    "decide_refund",
    "effective_status",
]


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
REFUSALS: dict[tuple[Status, Action], Refusal] = {
    (Status.PAID, Action.PAY): Refusal.ALREADY_PAID,
    (Status.CANCELLED, Action.PAY): Refusal.CANCELLED,
    (Status.EXPIRED, Action.PAY): Refusal.EXPIRED,
    (Status.PAID, Action.CANCEL): Refusal.ALREADY_PAID,
    (Status.EXPIRED, Action.CANCEL): Refusal.EXPIRED,
}

FINAL_STATUSES = frozenset(Status(word) for word in statuses.FINAL_STATUSES)

# Why a refund is refused, by the checkout's status: only money that was paid
# can go back. Paid is the one status not listed: it may be refunded.
REFUND_REFUSALS: dict[Status, Refusal] = {
    Status.PENDING: Refusal.NOT_PAID,
    Status.CANCELLED: Refusal.NOT_PAID,
    Status.EXPIRED: Refusal.NOT_PAID,
}


# What a new checkout announces, by how it came in. A cashier's checkout
# goes to its terminal in the cashier's show_qr; a typed one reaches its
# till's terminal only through the PSP's signed event. Every other
# checkout's events stay as they were: a reader from before checkout.created
# meets one only where printed codes take typed amounts.
CREATION_EVENTS: dict[Source, tuple[NewEvent, ...]] = {
    "dynamic": (),
    "static": (NewEvent("checkout.created", Status.PENDING),),
}


def creation_events(source: Source) -> tuple[NewEvent, ...]:
    """The events a new checkout of ``source`` is written with."""
    return CREATION_EVENTS[source]


class CheckoutFacts(Protocol):
    """What the rules read of a checkout (``records.Checkout`` has it)."""

    @property
    def merchant_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> Status: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def refunded_amount(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write. ``new_status``: the checkout's status after (None:
    leave it); ``refunded_amount``: its refunded total after (None: leave
    it); ``transfers``: the money moved through the ledger, each a record
    (a payment, a refund) of its own; ``events``: what is announced.
    ``refusal``: why the action is refused, if it is. A refusal can still
    write: paying a checkout that ran out of time refuses the payment and
    records the expiry. It never moves money."""

    new_status: Status | None
    refusal: Refusal | None = None
    events: tuple[NewEvent, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    refunded_amount: int | None = None

    def __post_init__(self) -> None:
        if self.refusal is not None and (self.transfers or self.refunded_amount is not None):
            raise ValueError(f"a refused decision ({self.refusal}) moves no money")

    @property
    def accepted(self) -> bool:
        return self.refusal is None and (
            self.new_status is not None or self.refunded_amount is not None
        )

    @property
    def changes_checkout(self) -> bool:
        return self.new_status is not None or self.refunded_amount is not None


def effective_status(status: Status, *, expires_at: int, now: int) -> Status:
    """The status a checkout stored as ``status`` is in at ``now``: pending
    lapses into expired at the millisecond ``expires_at`` comes, not after.
    The storage states this rule once more in SQL, where it sorts many rows
    at once (``sql_storage._LAPSED``: the sweeper's choice of what to expire,
    a day's totals); a test holds the two to the same boundary."""
    if status is Status.PENDING and now >= expires_at:
        return Status.EXPIRED
    return status


def _announced(status: Status, refusal: Refusal | None = None) -> Decision:
    return Decision(status, refusal, events=(NewEvent(EVENT_FOR_STATUS[status], status),))


# Decisions are frozen, so the accepted moves are made once: a payment
# asks for one every time.
_MOVES: dict[Status, Decision] = {
    Status(final): _announced(Status(final)) for final in EVENT_FOR_STATUS
}


def _moved(status: Status, *, refusal: Refusal | None = None) -> Decision:
    """A move to ``status``, announced by its event. Only a pending checkout
    moves, and a pending checkout has had nothing refunded."""
    return _MOVES[status] if refusal is None else _announced(status, refusal)


def decide(status: Status, action: Action, *, expires_at: int, now: int) -> Decision:
    """What ``action`` does to a checkout in ``status``, as far as its status
    goes (``decide_payment`` adds the wallet's side of paying)."""
    current = effective_status(status, expires_at=expires_at, now=now)
    target = TRANSITIONS.get((current, action))
    if target is not None:
        return _moved(target)
    refusal = REFUSALS.get((current, action))
    if current is not status:
        return _moved(current, refusal=refusal)  # the lapse is recorded either way
    return Decision(None, refusal)


@dataclass(frozen=True, slots=True)
class Purse:
    """What the payment rules need to know of the paying wallet."""

    wallet_id: str
    currency: str
    balance: int


def decide_payment(checkout: CheckoutFacts, *, purse: Purse, payment_id: str, now: int) -> Decision:
    """``decide`` for PAY, then the wallet's checks, in the order a wallet
    user can act on: a code that can't be paid says so before the funds do.
    Accepted, the payment ``payment_id`` moves the checkout's amount from the
    wallet to the merchant."""
    decision = decide(checkout.status, Action.PAY, expires_at=checkout.expires_at, now=now)
    if not decision.accepted:
        return decision
    if purse.currency != checkout.currency:
        return Decision(None, Refusal.CURRENCY_MISMATCH)
    if purse.balance < checkout.amount:
        return Decision(None, Refusal.INSUFFICIENT_FUNDS)
    payment = Transfer(
        payment_id,
        checkout.currency,
        checkout.amount,
        Account.wallet(purse.wallet_id),
        Account.merchant(checkout.merchant_id),
    )
    return Decision(decision.new_status, events=decision.events, transfers=(payment,))


def decide_refund(
    checkout: CheckoutFacts, *, amount: int, refund_id: str, payer: str | None
) -> Decision:
    """Refunding ``amount`` of ``checkout`` to ``payer``, the wallet that
    paid it (None: no payment was made). The status speaks first: "not paid"
    is more useful than "too much". Accepted, the refund ``refund_id`` moves
    ``amount`` from the merchant back to the payer, the checkout's refunded
    total grows by it and ``checkout.refunded`` announces the new total."""
    refusal = REFUND_REFUSALS.get(checkout.status)
    if refusal is not None:
        return Decision(None, refusal)
    if amount < 1:
        return Decision(None, Refusal.INVALID_AMOUNT)
    if amount > checkout.amount - checkout.refunded_amount:
        return Decision(None, Refusal.REFUND_EXCEEDS_PAYMENT)
    if payer is None:
        raise ValueError("a paid checkout with no payment cannot be refunded")
    refunded = checkout.refunded_amount + amount
    back = Transfer(
        refund_id,
        checkout.currency,
        amount,
        Account.merchant(checkout.merchant_id),
        Account.wallet(payer),
    )
    return Decision(
        None,
        events=(NewEvent("checkout.refunded", Status.PAID, refunded),),
        transfers=(back,),
        refunded_amount=refunded,
    )


def decide_order(stored_request: str, request: str) -> Refusal | None:
    """A checkout for an order id the merchant used before: the same request
    (its fingerprint) is a retry and gets the existing checkout; another is
    a conflict."""
    return None if stored_request == request else Refusal.ORDER_CONFLICT
