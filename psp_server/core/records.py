"""Rows as the rest of the PSP sees them, whichever database holds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from psp_server.core.errors import Refused
from psp_server.core.machine import Status
from psp_server.core.qr import URL_ONLY, QrSettings
from scan2pay_common.messages import CheckoutSnapshot
from scan2pay_common.timefmt import to_rfc3339

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    qr: QrSettings = URL_ONLY  # what its checkouts' QR codes encode (core/qr.py)


@dataclass(frozen=True, slots=True)
class Wallet:
    id: str
    name: str
    currency: str
    balance: int


@dataclass(frozen=True, slots=True)
class Checkout:
    id: str
    merchant_id: str
    order_id: str
    amount: int
    currency: str
    description: str | None
    terminal_id: str | None
    code: str
    qr_url: str
    status: Status
    created_at: int
    expires_at: int
    updated_at: int
    refunded_amount: int = 0
    # The static till code a customer typed this checkout's amount at, or
    # None for a checkout a cashier made (docs/static-qr.md).
    static_code_id: str | None = None

    def changed(self, status: Status, refunded_amount: int, updated_at: int) -> Checkout:
        """This checkout as a decision leaves it. Written out, not
        ``dataclasses.replace``, which looks the fields up on every call: it
        runs on every payment, for the row and for its event."""
        return Checkout(
            self.id,
            self.merchant_id,
            self.order_id,
            self.amount,
            self.currency,
            self.description,
            self.terminal_id,
            self.code,
            self.qr_url,
            status,
            self.created_at,
            self.expires_at,
            updated_at,
            refunded_amount,
            self.static_code_id,
        )

    def snapshot(self, status: Status | None = None) -> CheckoutSnapshot:
        """The public view; ``status`` overrides the stored one, so that a
        pending checkout past its expiry is reported as expired."""
        return CheckoutSnapshot(
            id=self.id,
            order_id=self.order_id,
            amount=self.amount,
            currency=self.currency,
            status=(status or self.status).value,
            qr_url=self.qr_url,
            expires_at=to_rfc3339(self.expires_at),
            terminal_id=self.terminal_id,
            created_at=to_rfc3339(self.created_at),
            description=self.description,
            refunded_amount=self.refunded_amount,
            source="dynamic" if self.static_code_id is None else "static",
            static_code_id=self.static_code_id,
        )


@dataclass(frozen=True, slots=True)
class StatusTotal:
    """The checkouts of one currency in one status (pending past its expiry
    counts as expired) over a span of time: how many, their amounts, and
    how much of those was refunded."""

    currency: str
    status: Status
    count: int
    amount: int
    refunded: int


@dataclass(frozen=True, slots=True)
class MerchantDay:
    """What the merchant's board starts from: the newest checkouts created
    since a moment, the totals of all of them, and the merchant's last event
    ``seq`` as it was before they were read (changes come after it)."""

    checkouts: list[Checkout]
    totals: list[StatusTotal]
    event_seq: int


@dataclass(frozen=True, slots=True)
class BoardChanges:
    """What changed for the board since its cursor: the checkouts of the
    merchant's events after ``seq`` (as they are now, oldest event first,
    whenever they were created), the checkouts created in the recent window
    (newest first), the new cursor, and whether more events wait past
    ``limit``."""

    changed: list[Checkout]
    created: list[Checkout]
    event_seq: int
    more: bool


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    checkout_id: str
    wallet_id: str
    amount: int
    currency: str
    created_at: int


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event row waiting for the relay, its payload the exact bytes to
    publish; ``terminal_id``, the terminal its checkout was made for, is the
    payload's own, stored beside it so that routing needs no parse."""

    position: int
    event_id: str
    merchant_id: str
    seq: int
    type: str
    terminal_id: str | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """The events the relay has not published yet: how many, and when the
    oldest of them was written (ms; None when there are none)."""

    pending: int
    oldest_created_at: int | None

    def __post_init__(self) -> None:
        if self.pending < 0 or (self.pending == 0) != (self.oldest_created_at is None):
            raise ValueError(f"not a backlog: {self.pending} from {self.oldest_created_at}")

    def oldest_age(self, now: int) -> float:
        """Seconds since the oldest pending event was written; 0 with none."""
        if self.oldest_created_at is None:
            return 0.0
        return max(0, now - self.oldest_created_at) / 1000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One of the PSP's signing keys, as ``keys show`` and ``GET /v1/keys``
    list it: never the private half."""

    kid: str
    public_key: str  # ed25519:<base64url>
    created_at: int
    active: bool


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    checkout_id: str
    payment_id: str
    amount: int
    currency: str
    created_at: int


# Idempotency keys.


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An ``Idempotency-Key`` in its scope: who sent it, to which endpoint,
    and a fingerprint of what they asked, so that reusing a key for another
    request is caught instead of replayed."""

    principal: str  # a merchant id or a wallet id
    endpoint: str  # "POST /v1/payments", the route's pattern
    key: str
    request_hash: str

    @property
    def scope(self) -> tuple[str, str, str]:
        return self.principal, self.endpoint, self.key


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer as an idempotency key keeps it: replayed byte for byte."""

    status: int
    body: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """How an operation's outcome becomes its HTTP answer, inside the
    operation's own transaction, so that the answer is stored with the work
    it describes. ``render`` gets the result or the ``Refused`` the rules
    gave; when it raises, the work is undone and nothing is stored. With no
    ``key`` nothing is stored either: the answer is only rendered."""

    key: IdempotencyKey | None
    render: Callable[[T | Refused], Reply]
