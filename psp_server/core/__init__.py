"""The PSP's decisions, without I/O: the checkout's transitions, what they
refuse and what they move and announce (``machine``), the ledger
transfers and events a decision lists (``effects``), what a new order
becomes (``orders``), the records the decisions are about (``records``),
the requests the API accepts, parsed into frozen dataclasses
(``payloads``), what a merchant's QR codes encode and a checkout's EMV
payload (``qr``), the identifiers and secrets it hands out
(``credentials``), what a scan of a till's printed code shows and which
typed amounts become checkouts (``static_codes``) and its exception tree
with the one ``Refusal`` (``errors``). Nothing here speaks HTTP, SQL or MQTT; storage applies
what the core decides, and every other package builds on it."""

from psp_server.core.credentials import secret_bytes
from psp_server.core.effects import AccountKind, NewEvent, Transfer, opening
from psp_server.core.errors import (
    APIError,
    ConfigError,
    PSPError,
    Refusal,
    Refused,
    StorageError,
    StorageUnavailable,
)
from psp_server.core.machine import (
    Action,
    Decision,
    Purse,
    Status,
    decide,
    decide_order,
    decide_payment,
    decide_refund,
    effective_status,
)
from psp_server.core.orders import new_checkout
from psp_server.core.payloads import (
    CheckoutRequest,
    EventsQuery,
    PaymentRequest,
    RefundRequest,
    check_code,
    check_idempotency_key,
)
from psp_server.core.records import (
    Answer,
    BoardChanges,
    Checkout,
    IdempotencyKey,
    KeyInfo,
    Merchant,
    MerchantDay,
    OutboxEvent,
    Payment,
    Refund,
    Reply,
    StatusTotal,
    Wallet,
)

__all__ = [
    "APIError",
    "AccountKind",
    "Action",
    "Answer",
    "BoardChanges",
    "Checkout",
    "CheckoutRequest",
    "ConfigError",
    "Decision",
    "EventsQuery",
    "IdempotencyKey",
    "KeyInfo",
    "Merchant",
    "MerchantDay",
    "NewEvent",
    "OutboxEvent",
    "PSPError",
    "Payment",
    "PaymentRequest",
    "Purse",
    "Refund",
    "RefundRequest",
    "Refusal",
    "Refused",
    "Reply",
    "Status",
    "StatusTotal",
    "StorageError",
    "StorageUnavailable",
    "Transfer",
    "Wallet",
    "check_code",
    "check_idempotency_key",
    "decide",
    "decide_order",
    "decide_payment",
    "decide_refund",
    "effective_status",
    "new_checkout",
    "opening",
    "secret_bytes",
]
