"""The storage interface. SQLite implements it today; PostgreSQL can follow
by implementing the same methods with the same rules (``checkout_machine``)."""

from __future__ import annotations

import abc

from ..payloads import CheckoutRequest
from .records import Checkout, Merchant, OutboxEvent, Payment, Wallet


class Storage(abc.ABC):
    @abc.abstractmethod
    async def close(self) -> None: ...

    # Principals. Keys and tokens go in and come out once; only hashes are kept.

    @abc.abstractmethod
    async def create_merchant(self, name: str) -> tuple[Merchant, str]:
        """Returns the merchant and its API key, which is never shown again."""

    @abc.abstractmethod
    async def merchant_by_key(self, api_key: str) -> Merchant | None: ...

    @abc.abstractmethod
    async def create_wallet(self, name: str, currency: str, balance: int) -> tuple[Wallet, str]:
        """Returns the wallet and its bearer token, which is never shown again."""

    @abc.abstractmethod
    async def get_wallet(self, wallet_id: str) -> Wallet | None: ...

    @abc.abstractmethod
    async def wallet_by_token(self, token: str) -> Wallet | None: ...

    @abc.abstractmethod
    async def merchant_balances(self, merchant_id: str) -> dict[str, int]: ...

    # Checkouts.

    @abc.abstractmethod
    async def create_checkout(
        self, merchant_id: str, request: CheckoutRequest, *, public_url: str, now: int
    ) -> tuple[Checkout, bool]:
        """Returns the checkout and whether it is new. The same order id with
        the same request returns the existing one; a different request raises
        ``Refused("order_conflict")``."""

    @abc.abstractmethod
    async def get_checkout(self, merchant_id: str, checkout_id: str) -> Checkout | None: ...

    @abc.abstractmethod
    async def cancel_checkout(self, merchant_id: str, checkout_id: str, *, now: int) -> Checkout:
        """Raises ``Refused`` when the rules say no, or ``not_found``."""

    @abc.abstractmethod
    async def lookup_code(self, code: str) -> tuple[Checkout, Merchant] | None: ...

    @abc.abstractmethod
    async def pay(self, wallet_token: str, code: str, *, now: int) -> tuple[Payment, Checkout]:
        """Debits the wallet, credits the merchant and marks the checkout paid,
        in one transaction. Raises ``Refused`` (``unauthorized`` for a bad
        token, ``unknown_code``, or what the checkout rules say)."""

    @abc.abstractmethod
    async def expire_due(self, *, now: int, limit: int = 500) -> int:
        """Marks pending checkouts past their expiry as expired; returns how many."""

    # The outbox.

    @abc.abstractmethod
    async def unpublished_events(self, *, limit: int = 500) -> list[OutboxEvent]:
        """In the order they were written, oldest first."""

    @abc.abstractmethod
    async def mark_published(self, positions: list[int], *, now: int) -> None: ...
