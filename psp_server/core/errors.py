"""The PSP's exceptions. Each API error carries its HTTP status and a stable code;
the error middleware turns it into the envelope of ``envelope.py``."""

from __future__ import annotations

from enum import StrEnum

from scan2pay_common.errors import InvalidValue


class PSPError(Exception):
    """Base of everything the PSP raises on purpose."""


class StorageError(PSPError):
    """The database could not be opened, migrated or written."""


class StorageUnavailable(StorageError):
    """The database cannot be reached at all (the server is down, the file
    was moved away): nothing was changed, and the same call may succeed once
    it is back. The API answers 503 ``storage_unavailable``; background
    loops back off."""


class ConfigError(PSPError):
    """Settings that cannot work; ``problems`` lists every one, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Refusal(StrEnum):
    """Every way the PSP says no to a checkout, a payment or a refund, with
    the HTTP status and message it is answered with. A member is its code
    (a ``str``), the ``error.code`` of the JSON answer."""

    # The checkout rules (checkout_machine).
    ALREADY_PAID = ("already_paid", 409, "this checkout has already been paid")
    CANCELLED = ("cancelled", 410, "this checkout was cancelled")
    EXPIRED = ("expired", 410, "this checkout has expired")
    CURRENCY_MISMATCH = ("currency_mismatch", 422, "the wallet's currency is not the checkout's")
    INSUFFICIENT_FUNDS = ("insufficient_funds", 402, "the wallet's balance is too low")
    NOT_PAID = ("not_paid", 409, "only a paid checkout can be refunded")
    INVALID_AMOUNT = ("invalid_amount", 422, "amount must be greater than zero")
    REFUND_EXCEEDS_PAYMENT = (
        "refund_exceeds_payment",
        422,
        "the refund is more than what was paid and not yet refunded",
    )
    ORDER_CONFLICT = (
        "order_conflict",
        409,
        "this order id already has a checkout with a different amount or details",
    )
    # What the request names is not there.
    NOT_FOUND = ("not_found", 404, "no such checkout")
    UNKNOWN_CODE = ("unknown_code", 404, "no checkout has this code")
    # Static till codes (core.static_codes).
    STATIC_CODE_NOT_FOUND = ("static_code_not_found", 404, "no static code has this id or code")
    STATIC_CODE_REVOKED = (
        "static_code_revoked",
        410,
        "the merchant revoked this code: ask at the till for the current one",
    )
    OPEN_AMOUNT_NOT_ALLOWED = (
        "open_amount_not_allowed",
        409,
        "this code takes no typed amount: pay the checkout the till shows",
    )
    TILL_HAS_CHECKOUT = (
        "till_has_checkout",
        409,
        "the till has a checkout waiting: pay that one (scan the code again to see it)",
    )
    AMOUNT_OUT_OF_RANGE = (
        "amount_out_of_range",
        422,
        "the amount must be a whole number of minor units within the code's min and max",
    )
    # Idempotency keys (routes.InFlight, storage.base).
    REQUEST_IN_PROGRESS = (
        "request_in_progress",
        409,
        "a request with this Idempotency-Key is still being processed; retry",
    )
    IDEMPOTENCY_MISMATCH = (
        "idempotency_mismatch",
        422,
        "this Idempotency-Key was used with a different request",
    )

    status: int
    message: str

    def __new__(cls, code: str, status: int, message: str) -> Refusal:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.message = message
        return member

    @property
    def code(self) -> str:
        return self.value

    def error(self) -> APIError:
        return APIError(self.code, self.message, status=self.status)


# HTTP status of the codes that are no refusal: validation and who is asking.
# Anything else that is an InvalidValue is a 422. Errors aiohttp raises
# itself (404, 405, 413) are named in app._HTTP_CODES.
STATUS_OF_CODE: dict[str, int] = {
    "invalid_json": 400,
    "invalid_idempotency_key": 400,
    "unauthorized": 401,
    **{refusal.code: refusal.status for refusal in Refusal},
}


class Refused(PSPError):
    """The storage layer's answer when the rules say no."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal

    @property
    def code(self) -> str:
        return self.refusal.code


class APIError(PSPError):
    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_OF_CODE.get(code, 422)

    @classmethod
    def from_invalid(cls, exc: InvalidValue) -> APIError:
        return cls(exc.code, exc.message)
