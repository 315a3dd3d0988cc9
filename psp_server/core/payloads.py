"""The request bodies, query strings and headers the API accepts, parsed
strictly into frozen dataclasses."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psp_server.core.errors import Refusal
from scan2pay_common import jsonfields as jf
from scan2pay_common.checkout_rules import CheckoutFields, check_checkout
from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import check_minor_amount

_CODE = re.compile(r"[A-Z2-7]{16,64}")
# Printable ASCII, as Stripe takes it; a UUID fits with room to spare.
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
EVENTS_LIMIT_DEFAULT = 100
EVENTS_LIMIT_MAX = 1000
_MAX_SEQ = 2**63 - 1  # BIGINT
_DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class CheckoutRequest(CheckoutFields):
    """A create request's body: the fields the shared rules check, and no
    other key."""

    _REQUIRED = frozenset({"order_id", "amount", "currency"})
    _OPTIONAL = frozenset({"terminal_id", "expires_in", "description"})

    @classmethod
    def parse(cls, obj: dict[str, Any], *, max_amount: int) -> CheckoutRequest:
        jf.check_fields(obj, required=cls._REQUIRED, optional=cls._OPTIONAL)
        return check_checkout(obj, max_amount=max_amount, into=cls)

    def fingerprint(self) -> str:
        """The same for two requests that ask for the same checkout, so that
        a cashier's retry is recognised and a different body is not."""
        canonical = jf.dumps(
            [
                self.order_id,
                self.amount,
                self.currency,
                self.terminal_id,
                self.expires_in,
                self.description,
            ]
        )
        return _sha256(canonical)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    code: str

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> PaymentRequest:
        jf.check_fields(obj, required=frozenset({"code"}))
        return cls(code=check_code(obj["code"]))

    def fingerprint(self) -> str:
        """The code as the server reads it: " abc..." and "ABC..." are one request."""
        return _sha256(jf.dumps([self.code]))


@dataclass(frozen=True, slots=True)
class RefundRequest:
    amount: int

    @classmethod
    def parse(cls, obj: dict[str, Any], *, max_amount: int) -> RefundRequest:
        jf.check_fields(obj, required=frozenset({"amount"}))
        return cls(amount=check_minor_amount(obj["amount"], maximum=max_amount))

    def fingerprint(self, checkout_id: str) -> str:
        """The checkout is part of the request: one key reused for another
        checkout's refund is a mismatch, not a second refund."""
        return _sha256(jf.dumps([checkout_id, self.amount]))


@dataclass(frozen=True, slots=True)
class EventsQuery:
    """``GET /v1/events?after=SEQ&limit=N``: events with seq above ``after``."""

    after: int
    limit: int

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]]) -> EventsQuery:
        given: dict[str, list[str]] = {}
        for name, value in params:
            given.setdefault(name, []).append(value)
        unknown = sorted(set(given) - {"after", "limit"})
        if unknown:
            raise InvalidValue(
                "unknown_parameter", f"unknown query parameter(s): {', '.join(unknown)}"
            )
        after = _count(given.get("after"), "after", "invalid_after", default=0, low=0)
        limit = _count(
            given.get("limit"), "limit", "invalid_limit", default=EVENTS_LIMIT_DEFAULT, low=1
        )
        if limit > EVENTS_LIMIT_MAX:
            raise InvalidValue("invalid_limit", f"limit must be from 1 to {EVENTS_LIMIT_MAX}")
        return cls(after=after, limit=limit)


def _count(values: list[str] | None, name: str, code: str, *, default: int, low: int) -> int:
    """A query parameter that must be one decimal integer of at least ``low``."""
    if values is None:
        return default
    if len(values) != 1 or not _DIGITS.fullmatch(values[0]):
        raise InvalidValue(code, f"{name} must be given once, as a whole number")
    value = int(values[0])
    if not low <= value <= _MAX_SEQ:
        raise InvalidValue(code, f"{name} must be from {low} to {_MAX_SEQ}")
    return value


def check_idempotency_key(values: list[str]) -> str | None:
    """The ``Idempotency-Key`` header's value, or None without one. Given
    twice it is refused: which of two keys the client meant is a guess."""
    if not values:
        return None
    if len(values) != 1 or not _IDEMPOTENCY_KEY.fullmatch(values[0]):
        raise InvalidValue(
            "invalid_idempotency_key",
            "Idempotency-Key must be given once, as 1 to 255 printable ASCII characters",
        )
    return values[0]


def _sha256(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def check_code(value: object) -> str:
    """A QR code as a wallet sends it; lower case is accepted and folded, since
    base32 is case-blind and some scanners lower-case what they read."""
    if not isinstance(value, str):
        raise InvalidValue("invalid_code", "code must be a string")
    code = value.strip().upper()
    if not _CODE.fullmatch(code):
        # Malformed or merely unknown, the answer is the same: no such code.
        raise InvalidValue(Refusal.UNKNOWN_CODE.code, Refusal.UNKNOWN_CODE.message)
    return code
