"""Static till codes, without I/O (docs/static-qr.md): what a merchant may
ask for, what a scan of a printed code shows, and whether an amount a
customer typed may become a checkout.

A printed code is a fixed pointer to a till, never a payment: each scan
is decided afresh from what the till has now.

    revoked code                          -> "revoked" (410)
    the till has a cashier's checkout     -> that checkout's payment page
    open amounts allowed                  -> the form for an amount
    otherwise                             -> "nothing to pay yet", refreshing

Only a checkout the cashier made (one without a static code) is "the
till's": a checkout a customer made by typing an amount belongs to that
customer alone, so that a second customer scanning the same sticker gets a
form and a checkout of their own, never the first one's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psp_server.core import credentials
from psp_server.core.errors import Refusal, Refused
from psp_server.core.machine import Status, effective_status
from psp_server.core.qr import static_code_payload
from psp_server.core.records import Checkout, Merchant
from scan2pay_common import jsonfields as jf
from scan2pay_common.checkout_rules import DEFAULT_EXPIRES_IN
from scan2pay_common.errors import InvalidValue
from scan2pay_common.free_text import check_free_text
from scan2pay_common.identifiers import check_terminal_id
from scan2pay_common.money import check_currency, check_minor_amount
from scan2pay_common.static_codes import STATIC_PATH, short_id
from scan2pay_common.timefmt import to_rfc3339

LABEL_MAX = 40
# How long a checkout made from a typed amount waits to be paid.
STATIC_CHECKOUT_EXPIRES_IN = DEFAULT_EXPIRES_IN


@dataclass(frozen=True, slots=True)
class OpenAmount:
    """The amounts a customer may type at a code: ``minimum`` to ``maximum``
    (inclusive) minor units of ``currency``."""

    currency: str
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        check_currency(self.currency)
        check_minor_amount(self.minimum)
        check_minor_amount(self.maximum)
        if self.minimum > self.maximum:
            raise InvalidValue(
                "invalid_open_amount", "open_amount.min must not be above open_amount.max"
            )

    @classmethod
    def parse(cls, obj: object, *, max_amount: int) -> OpenAmount:
        if not isinstance(obj, dict):
            raise InvalidValue("invalid_open_amount", "open_amount must be an object or null")
        jf.check_fields(obj, required=frozenset({"currency", "min", "max"}))
        try:
            return cls(
                currency=check_currency(obj["currency"]),
                minimum=check_minor_amount(obj["min"], maximum=max_amount),
                maximum=check_minor_amount(obj["max"], maximum=max_amount),
            )
        except InvalidValue as exc:
            if exc.code == "invalid_open_amount":
                raise
            raise InvalidValue(
                "invalid_open_amount", f"open_amount: {exc.message}", field="open_amount"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "min": self.minimum, "max": self.maximum}


@dataclass(frozen=True, slots=True)
class StaticCodeRequest:
    """``POST /v1/terminals/{terminal_id}/static-codes``: the till's label
    as the sticker and the page show it (the terminal id when left out),
    and the amounts a customer may type, if any."""

    label: str | None
    open_amount: OpenAmount | None

    @classmethod
    def parse(cls, obj: dict[str, Any], *, max_amount: int) -> StaticCodeRequest:
        jf.check_fields(obj, required=frozenset(), optional=frozenset({"label", "open_amount"}))
        label = obj.get("label")
        if label is not None:
            label = check_free_text(label, field="label", code="invalid_label", maximum=LABEL_MAX)
            if not label.strip():
                raise InvalidValue("invalid_label", "label must not be blank", field="label")
        raw = obj.get("open_amount")
        open_amount = None if raw is None else OpenAmount.parse(raw, max_amount=max_amount)
        return cls(label=label, open_amount=open_amount)


@dataclass(frozen=True, slots=True)
class StaticCode:
    id: str
    merchant_id: str
    terminal_id: str
    label: str
    code: str
    url: str
    open_amount: OpenAmount | None
    created_at: int
    revoked_at: int | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "url": self.url,
            "terminal_id": self.terminal_id,
            "label": self.label,
            "short_id": self.short_id,
            "open_amount": None if self.open_amount is None else self.open_amount.to_json(),
            "created_at": to_rfc3339(self.created_at),
            "revoked_at": None if self.revoked_at is None else to_rfc3339(self.revoked_at),
        }


def new_static_code(
    merchant_id: str, terminal_id: str, request: StaticCodeRequest, *, public_url: str, now: int
) -> StaticCode:
    """A new code for the till: 160 random bits in upper-case base32, so
    that the whole URL (upper-cased ``public_url`` aside) stays in the QR's
    alphanumeric mode."""
    check_terminal_id(terminal_id)
    code = credentials.new_code()
    return StaticCode(
        id=credentials.new_id("sc"),
        merchant_id=merchant_id,
        terminal_id=terminal_id,
        label=request.label if request.label is not None else terminal_id,
        code=code,
        url=f"{public_url.rstrip('/')}{STATIC_PATH}{code}",
        open_amount=request.open_amount,
        created_at=now,
    )


def code_payload(code: StaticCode, merchant: Merchant) -> str | None:
    """What the code's QR encodes when it is not its URL: the static EMV
    payload of an ``emv`` merchant's code that names a currency."""
    return static_code_payload(
        merchant_name=merchant.name,
        settings=merchant.qr,
        url=code.url,
        currency=None if code.open_amount is None else code.open_amount.currency,
        terminal_id=code.terminal_id,
    )


def code_json(code: StaticCode, merchant: Merchant) -> dict[str, Any]:
    """The code as the API answers it; with ``qr_payload``, the exact string
    its sticker encodes, when it is an EMV payload."""
    body = code.to_json()
    payload = code_payload(code, merchant)
    if payload is not None:
        body["qr_payload"] = payload
    return body


# What a scan shows.


class ScanKind(StrEnum):
    REVOKED = "revoked"
    CHECKOUT = "checkout"
    OPEN_AMOUNT = "open_amount"
    NOTHING_YET = "nothing_yet"


@dataclass(frozen=True, slots=True)
class Scan:
    kind: ScanKind
    checkout: Checkout | None = None


def decide_scan(code: StaticCode, till_checkout: Checkout | None, *, now: int) -> Scan:
    """What ``GET /S/{CODE}`` shows, ``till_checkout`` being the newest
    checkout the cashier made for the code's till that the storage found
    pending (it may have lapsed since it was read)."""
    if code.revoked:
        return Scan(ScanKind.REVOKED)
    if till_checkout is not None and _payable(till_checkout, code, now):
        return Scan(ScanKind.CHECKOUT, till_checkout)
    if code.open_amount is not None:
        return Scan(ScanKind.OPEN_AMOUNT)
    return Scan(ScanKind.NOTHING_YET)


def _payable(checkout: Checkout, code: StaticCode, now: int) -> bool:
    return (
        checkout.merchant_id == code.merchant_id
        and checkout.terminal_id == code.terminal_id
        and checkout.static_code_id is None
        and effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
        is Status.PENDING
    )


def check_typed_amount(
    code: StaticCode, till_checkout: Checkout | None, amount: object, *, now: int
) -> tuple[OpenAmount, int]:
    """Whether a customer's typed ``amount`` (minor units) may become a
    checkout at ``code``'s till: the code's open amounts and the amount,
    or ``Refused`` with what to answer. The till's own pending checkout comes
    first: the customer is to pay what the cashier rang up."""
    if code.revoked:
        raise Refused(Refusal.STATIC_CODE_REVOKED)
    if till_checkout is not None and _payable(till_checkout, code, now):
        raise Refused(Refusal.TILL_HAS_CHECKOUT)
    if code.open_amount is None:
        raise Refused(Refusal.OPEN_AMOUNT_NOT_ALLOWED)
    try:
        typed = check_minor_amount(amount)
    except InvalidValue:
        raise Refused(Refusal.AMOUNT_OUT_OF_RANGE) from None
    if not code.open_amount.minimum <= typed <= code.open_amount.maximum:
        raise Refused(Refusal.AMOUNT_OUT_OF_RANGE)
    return code.open_amount, typed


def new_static_checkout(code: StaticCode, amount: int, *, now: int, public_url: str) -> Checkout:
    """The checkout a typed amount becomes: bound to the code's till and
    marked with the code, with an order id of its own (the cashier made no
    order), payable through its own /Q/ code as any other."""
    checkout_id = credentials.new_id("co")
    qr_code = credentials.new_code()
    open_amount = code.open_amount
    if open_amount is None:  # check_typed_amount refuses this first
        raise Refused(Refusal.OPEN_AMOUNT_NOT_ALLOWED)
    return Checkout(
        id=checkout_id,
        merchant_id=code.merchant_id,
        order_id=f"static-{checkout_id}",
        amount=amount,
        currency=open_amount.currency,
        description=None,
        terminal_id=code.terminal_id,
        code=qr_code,
        qr_url=f"{public_url.rstrip('/')}/Q/{qr_code}",
        status=Status.PENDING,
        created_at=now,
        expires_at=now + STATIC_CHECKOUT_EXPIRES_IN * 1000,
        updated_at=now,
        static_code_id=code.id,
    )
