"""The storage interface, which SQLite and PostgreSQL implement with the
same SQL (``sql_storage``). Every rule of what a checkout, payment or refund
does is ``checkout_machine``'s: the storage reads the rows, asks it, and
writes the ``Decision`` it returns (status, ledger, events) in one
transaction.

Money moves only through the ledger: every payment, refund and opening
balance writes entries that sum to zero per currency, in the transaction
that moves it. The balances a wallet or merchant reads are caches of those
entries, written in the same transaction.

Idempotency keys: each ``*_reply`` method runs its operation and renders
its answer (``Answer.render``) in one transaction; under a key it first
looks for a stored answer (replayed, or ``Refused(Refusal.IDEMPOTENCY_MISMATCH)``
for another request) and otherwise stores the new one with the work.
SQLite's single writer serialises two requests with one key, so the second
always finds the first's committed row. The server's in-memory set of keys
in flight covers one process only: a PostgreSQL backend serving several
processes must let the primary key on (principal, endpoint, key) decide,
for instance by inserting the key's row first in the transaction, so that a
concurrent request with the same key blocks on it and then replays the
committed answer, or, losing with a unique violation, rolls its work back
and is answered ``request_in_progress``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from psp_server.core.payloads import CheckoutRequest
from psp_server.core.qr import QrSettings
from psp_server.core.records import (
    Answer,
    BoardChanges,
    Checkout,
    KeyInfo,
    Merchant,
    MerchantDay,
    OutboxBacklog,
    OutboxEvent,
    Payment,
    Refund,
    Reply,
    StatusTotal,
    Wallet,
)
from scan2pay_common.signing import SigningKey

# How long an idempotency key's answer is kept at the least; the sweeper may
# purge older ones (``purge_idempotency_keys``).
IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000


class Storage(abc.ABC):
    @abc.abstractmethod
    async def close(self) -> None: ...

    # Signing keys (docs/signing.md). The active key is loaded once, when the
    # storage opens (made then if there is none); it signs every event and
    # display ticket until the storage is opened again.

    @property
    @abc.abstractmethod
    def signing_key(self) -> SigningKey: ...

    @abc.abstractmethod
    async def signing_keys(self) -> list[KeyInfo]:
        """Every key, the active one first, then the others newest first."""

    @abc.abstractmethod
    async def rotate_signing_key(self, *, now: int) -> KeyInfo:
        """Makes a new active key; the old ones stay for verification. This
        storage object goes on signing with the key it loaded."""

    # Principals. Keys and tokens go in and come out once; only hashes are kept.

    @abc.abstractmethod
    async def create_merchant(self, name: str) -> tuple[Merchant, str]:
        """Returns the merchant and its API key, which is never shown again."""

    @abc.abstractmethod
    async def merchant_by_key(self, api_key: str) -> Merchant | None: ...

    @abc.abstractmethod
    async def replace_secret(self, kind: str, owner_id: str, *, revoke: bool) -> str | None:
        """Rotates (a new secret, returned once) or revokes (None) the API key
        of merchant ``owner_id`` (``kind`` "merchant") or the token of wallet
        ``owner_id`` (``kind`` "wallet"); the old one stops working at once.
        Raises ``Refused(Refusal.NOT_FOUND)`` for an unknown owner."""

    @abc.abstractmethod
    async def merchant_with_key_hash(self, merchant_id: str) -> tuple[Merchant, str, int] | None:
        """The merchant, the hash of its API key as it is now (a revoked
        key's marker after a revocation) and its session epoch: a web session
        is bound to both, so that rotating or revoking the key, or signing
        out (``end_sessions``), ends the merchant's sessions."""

    @abc.abstractmethod
    async def update_qr_settings(self, merchant_id: str, settings: QrSettings) -> Merchant | None:
        """Stores the merchant's QR settings (core/qr.py) and returns the
        merchant as it is now; None for an unknown merchant."""

    @abc.abstractmethod
    async def end_sessions(self, merchant_id: str) -> None:
        """Ends every web session of the merchant made before now."""

    @abc.abstractmethod
    async def create_wallet(self, name: str, currency: str, balance: int) -> tuple[Wallet, str]:
        """Returns the wallet and its bearer token, which is never shown again.
        The opening balance comes out of the currency's funding account."""

    @abc.abstractmethod
    async def get_wallet(self, wallet_id: str) -> Wallet | None: ...

    @abc.abstractmethod
    async def wallet_id_by_token(self, token: str) -> str | None:
        """The id of the wallet the token names, for a payment; a found
        token may be believed for a second (a revocation through another
        process takes up to that long, as a merchant key's does)."""

    @abc.abstractmethod
    async def merchant_balances(self, merchant_id: str) -> dict[str, int]: ...

    @abc.abstractmethod
    async def ledger_balances(self) -> dict[tuple[str, str], int]:
        """Every (account, currency)'s balance as the sum of its ledger
        entries: what the cached balances must equal."""

    # Checkouts.

    @abc.abstractmethod
    async def create_checkout(
        self, merchant_id: str, request: CheckoutRequest, *, public_url: str, now: int
    ) -> tuple[Checkout, bool]:
        """Returns the checkout and whether it is new. The same order id with
        the same request returns the existing one; a different request raises
        ``Refused(Refusal.ORDER_CONFLICT)``."""

    @abc.abstractmethod
    async def create_checkout_reply(
        self,
        answer: Answer[tuple[Checkout, bool]],
        merchant_id: str,
        request: CheckoutRequest,
        *,
        public_url: str,
        now: int,
        fresh: Checkout | None = None,
    ) -> Reply:
        """``create_checkout``, answered as ``answer`` says (see the module).
        ``fresh``, made by ``new_checkout``, is the checkout to store if the
        order is new: a caller that made it can prepare its answer (sign its
        display ticket) before the write, outside the group's transaction."""

    @abc.abstractmethod
    async def get_checkout(self, merchant_id: str, checkout_id: str) -> Checkout | None: ...

    @abc.abstractmethod
    async def cancel_checkout(self, merchant_id: str, checkout_id: str, *, now: int) -> Checkout:
        """Raises ``Refused`` when the rules say no, or ``NOT_FOUND``."""

    @abc.abstractmethod
    async def lookup_code(self, code: str) -> tuple[Checkout, Merchant] | None: ...

    @abc.abstractmethod
    async def pay(self, wallet_id: str, code: str, *, now: int) -> tuple[Payment, Checkout]:
        """Debits the wallet, credits the merchant and marks the checkout paid,
        in one transaction. Raises ``Refused`` (``UNKNOWN_CODE``, or what the
        checkout rules say).

        The wallet is one the caller has already authenticated
        (``wallet_id_by_token``, a read): a token is never checked in the write,
        where a refusal raised would roll back, and on SQLite replay, the
        commit group it joined. A token revoked while its payment is on its
        way to the writer does not stop that payment, as a merchant key
        revoked in the meantime does not stop a request already let in."""

    @abc.abstractmethod
    async def pay_reply(
        self, answer: Answer[tuple[Payment, Checkout]], wallet_id: str, code: str, *, now: int
    ) -> Reply:
        """``pay``, answered as ``answer`` says (see the module)."""

    @abc.abstractmethod
    async def refund(
        self, merchant_id: str, checkout_id: str, amount: int, *, now: int
    ) -> tuple[Refund, Checkout]:
        """Gives ``amount`` of a paid checkout back to the wallet that paid it:
        the merchant's debit, the wallet's credit, the checkout's refunded
        total and the ``checkout.refunded`` event in one transaction. The
        checkout stays paid. Raises ``Refused`` (``NOT_FOUND``, ``NOT_PAID``,
        ``REFUND_EXCEEDS_PAYMENT``, ``INVALID_AMOUNT``)."""

    @abc.abstractmethod
    async def refund_reply(
        self,
        answer: Answer[tuple[Refund, Checkout]],
        merchant_id: str,
        checkout_id: str,
        amount: int,
        *,
        now: int,
    ) -> Reply:
        """``refund``, answered as ``answer`` says (see the module)."""

    @abc.abstractmethod
    async def expire_due(self, *, now: int, limit: int = 500) -> int:
        """Marks pending checkouts past their expiry as expired; returns how many."""

    # The merchant's board (psp_server/web/board_stream.py).

    @abc.abstractmethod
    async def merchant_day(
        self, merchant_id: str, since: int, *, now: int, limit: int = 200
    ) -> MerchantDay:
        """The merchant's checkouts created at or after ``since`` (ms): the
        newest ``limit`` of them, newest first, and the totals of all of
        them per currency and status as of ``now``."""

    @abc.abstractmethod
    async def day_totals(self, merchant_id: str, since: int, *, now: int) -> list[StatusTotal]:
        """``merchant_day``'s totals alone, ordered by currency and status."""

    @abc.abstractmethod
    async def board_changes(
        self, merchant_id: str, *, after_seq: int, created_since: int, limit: int = 200
    ) -> BoardChanges:
        """The checkouts of the merchant's events after ``after_seq`` (the
        first ``limit`` events) and the newest ``limit`` of the merchant's
        checkouts created at or after ``created_since``, newest first (see
        ``BoardChanges``)."""

    # The outbox.

    @abc.abstractmethod
    async def unpublished_events(
        self, *, limit: int = 500, after: int = 0, partitions: Sequence[int] | None = None
    ) -> list[OutboxEvent]:
        """In the order they were written, oldest first; only those past
        position ``after`` (what a relay has sent but not yet marked), and,
        when ``partitions`` is given, only those of merchants in them
        (``psp_server/storage/partitions.py``; PostgreSQL only)."""

    @abc.abstractmethod
    async def mark_published(self, positions: list[int], *, now: int) -> None: ...

    @abc.abstractmethod
    async def events_after(
        self, merchant_id: str, after: int, *, limit: int, terminal_id: str | None = None
    ) -> list[OutboxEvent]:
        """The merchant's events with ``seq`` above ``after``, in ``seq``
        order, published or not: a consumer catching up from its cursor.
        With ``terminal_id``, only those of checkouts made for that terminal."""

    @abc.abstractmethod
    async def outbox_backlog(self) -> OutboxBacklog:
        """What the relay has yet to publish (``/metrics``, ``/readyz``):
        a read of the partial index of unsent events."""

    # The schema.

    @abc.abstractmethod
    async def applied_migrations(self) -> set[str]:
        """The ids of the migrations the database has applied; a read that
        also tells whether the database answers (``/readyz``)."""

    # Idempotency keys.

    @abc.abstractmethod
    async def purge_idempotency_keys(self, before: int, *, limit: int = 5000) -> int:
        """Deletes up to ``limit`` stored answers created before ``before``
        (ms), oldest first; returns how many. Keep at least
        ``IDEMPOTENCY_KEY_TTL_MS``: a purged key runs its request again."""
