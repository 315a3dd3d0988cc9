"""The PSP's exceptions. Each API error carries its HTTP status and a stable code;
the error middleware turns it into the envelope of ``envelope.py``."""

from __future__ import annotations

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


# HTTP status of each refusal the checkout rules can give, and of the
# validation codes; anything else that is an InvalidValue is a 422. Errors
# aiohttp raises itself (404, 405, 413) are named in app._HTTP_CODES.
STATUS_OF_CODE: dict[str, int] = {
    "invalid_json": 400,
    "invalid_idempotency_key": 400,
    "unauthorized": 401,
    "insufficient_funds": 402,
    "not_found": 404,
    "unknown_code": 404,
    "already_paid": 409,
    "order_conflict": 409,
    "not_paid": 409,
    "request_in_progress": 409,
    "cancelled": 410,
    "expired": 410,
    "currency_mismatch": 422,
    "idempotency_mismatch": 422,
    "refund_exceeds_payment": 422,
}


class Refused(PSPError):
    """The storage layer's answer when the rules say no: ``code`` is one of
    the refusal codes below, ``not_found``, ``unknown_code``, ``order_conflict``
    or ``idempotency_mismatch``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class APIError(PSPError):
    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_OF_CODE.get(code, 422)

    @classmethod
    def from_invalid(cls, exc: InvalidValue) -> APIError:
        return cls(exc.code, exc.message)


REFUSAL_MESSAGES: dict[str, str] = {
    "already_paid": "this checkout has already been paid",
    "cancelled": "this checkout was cancelled",
    "expired": "this checkout has expired",
    "currency_mismatch": "the wallet's currency is not the checkout's",
    "insufficient_funds": "the wallet's balance is too low",
    "not_found": "no such checkout",
    "unknown_code": "no checkout has this code",
    "order_conflict": "this order id already has a checkout with a different amount or details",
    "invalid_amount": "amount must be greater than zero",
    "not_paid": "only a paid checkout can be refunded",
    "refund_exceeds_payment": "the refund is more than what was paid and not yet refunded",
    "request_in_progress": "a request with this Idempotency-Key is still being processed; retry",
    "idempotency_mismatch": "this Idempotency-Key was used with a different request",
    "unauthorized": "missing or invalid bearer token",
}


def refusal(code: str) -> APIError:
    return APIError(code, REFUSAL_MESSAGES.get(code, code))
