"""What a decision of the checkout rules does besides moving the status: the
money it moves through the ledger and the events it announces. Pure data
that checks itself when made; ``checkout_machine`` makes it, the storage
writes it.

The ledger's accounts are named ``wallet:{wallet_id}``,
``merchant:{merchant_id}`` and ``funding:{currency}``. An entry's amount is
signed: positive is money the account holds, so that every transaction's
entries sum to zero per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scan2pay_common.statuses import STATUS_FOR_EVENT, EventType, Status


class AccountKind(StrEnum):
    WALLET = "wallet"
    MERCHANT = "merchant"
    # Where a wallet's opening balance comes from, so that money is conserved
    # from the first entry: it goes negative by exactly what was put into
    # wallets. No balance is cached for it.
    FUNDING = "funding"


@dataclass(frozen=True, slots=True)
class Account:
    kind: AccountKind
    owner: str  # the wallet's or merchant's id, or the funding account's currency

    def __post_init__(self) -> None:
        if not self.owner:
            raise ValueError(f"a {self.kind} account needs an owner")

    @property
    def name(self) -> str:
        """The account as the ledger's rows name it."""
        return f"{self.kind.value}:{self.owner}"

    @classmethod
    def wallet(cls, wallet_id: str) -> Account:
        return cls(AccountKind.WALLET, wallet_id)

    @classmethod
    def merchant(cls, merchant_id: str) -> Account:
        return cls(AccountKind.MERCHANT, merchant_id)

    @classmethod
    def funding(cls, currency: str) -> Account:
        return cls(AccountKind.FUNDING, currency)


@dataclass(frozen=True, slots=True)
class Posting:
    """One ledger entry: ``amount`` (signed) of ``currency`` for ``account``."""

    account: Account
    currency: str
    amount: int

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount == 0:
            raise ValueError(f"a posting moves a nonzero whole amount, not {self.amount!r}")


@dataclass(frozen=True, slots=True)
class Transfer:
    """``amount`` moved from ``source`` to ``destination`` as the ledger
    transaction ``id`` (the payment's, refund's or opening's id): two
    postings that sum to zero, so money is never made or lost, only moved."""

    id: str
    currency: str
    amount: int
    source: Account
    destination: Account

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 1:
            raise ValueError(f"a transfer moves a positive whole amount, not {self.amount!r}")
        if self.source == self.destination:
            raise ValueError(f"a transfer from {self.source.name} to itself moves nothing")

    @property
    def postings(self) -> tuple[Posting, Posting]:
        return (
            Posting(self.source, self.currency, -self.amount),
            Posting(self.destination, self.currency, self.amount),
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a decision announces about its checkout: its type and the
    fields of the checkout it changes (the status and refunded total the
    event carries). The rest of the payload is the checkout's row as it
    stands.

    The storage signs it, not the core: the signed bytes hold the event's
    id and the merchant's next ``seq``, which only the writing transaction
    knows (the seq is a counter on the merchant's row), and the key is the
    storage's. Signing is I/O-free, but it belongs with those values."""

    type: EventType
    status: Status
    refunded_amount: int = 0

    def __post_init__(self) -> None:
        if STATUS_FOR_EVENT[self.type] != self.status:
            raise ValueError(f"a {self.type} event cannot carry a {self.status} checkout")
        if self.refunded_amount < 0:
            raise ValueError("a refunded amount is never negative")
        if self.type == "checkout.refunded" and self.refunded_amount < 1:
            raise ValueError("a checkout.refunded event carries what was refunded")


def opening(
    transaction_id: str, wallet_id: str, currency: str, balance: int
) -> tuple[Transfer, ...]:
    """A new wallet's opening balance, out of its currency's funding account:
    nothing to move for an empty wallet (a transfer moves at least 1)."""
    if balance == 0:
        return ()
    return (
        Transfer(
            transaction_id, currency, balance, Account.funding(currency), Account.wallet(wallet_id)
        ),
    )
