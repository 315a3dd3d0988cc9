"""Rows as the rest of the PSP sees them, whichever database holds them."""

from __future__ import annotations

from dataclasses import dataclass

from scan2pay_common.messages import CheckoutSnapshot
from scan2pay_common.timefmt import to_rfc3339

from ..checkout_machine import Status


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str


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
        )


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
    """An event row waiting for the relay, its payload the exact bytes to publish."""

    position: int
    event_id: str
    merchant_id: str
    seq: int
    type: str
    payload: bytes
