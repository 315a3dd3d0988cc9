"""The PSP's merchant API (docs/api.md), as the bridge uses it.

Every call here is safe to repeat: reads are reads, a cancel of a cancelled
checkout is answered 200, and a create with the same order id and the same
body is answered 200 with the checkout made the first time. So a network error
(or a proxy's 502/503/504) is retried with backoff, and only after the last
attempt is it PspUnreachable.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from scan2pay_common.backoff import Backoff
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import CheckoutSnapshot, check_qr_payload
from scan2pay_common.signing import PublicKey

from .errors import KeyRejected, PspRefused, PspUnreachable
from .model import CheckoutOrder

log = logging.getLogger(__name__)

# Answers a proxy or load balancer in front of the PSP gives while the PSP
# restarts: as passing as a dropped connection.
TRANSIENT_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str


@dataclass(frozen=True)
class Created:
    checkout: CheckoutSnapshot
    new: bool  # 201; False: 200, the order already had this checkout (a retry)
    attempts: int
    elapsed_ms: float
    # The PSP-signed ticket the terminal needs to show the QR, forwarded as
    # it came; None from a PSP that does not sign.
    display_ticket: dict[str, Any] | None = None
    # What the QR encodes for a merchant whose codes are EMV payloads
    # (docs/emv.md), forwarded to the terminal in show_qr; None: qr_url.
    qr_payload: str | None = None


@dataclass(frozen=True)
class RetryNotice:
    request: str  # like "POST /v1/checkouts"
    next_attempt: int  # from 2
    attempts: int
    delay: float  # seconds
    reason: str


class _Transient(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PspClient:
    def __init__(
        self,
        base_url: str,
        merchant_key: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        on_retry: Callable[[RetryNotice], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = merchant_key
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None
        self._owner = True

    def notifying(self, on_retry: Callable[[RetryNotice], None] | None) -> PspClient:
        """This client, on the same connections, telling its retries to
        ``on_retry``: each checkout of a session hears its own. Closing it
        closes nothing; the client it came from owns the connections."""
        view = copy.copy(self)
        view._on_retry = on_retry
        view._owner = False
        return view

    async def __aenter__(self) -> PspClient:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None and self._owner:
            await self._session.close()
        self._session = None

    # The calls.

    async def merchant(self) -> Merchant:
        body = await self._call("GET", "/v1/merchant")
        try:
            return Merchant(id=check_merchant_id(body.get("id")), name=str(body.get("name", "")))
        except InvalidValue as exc:
            raise PspRefused(f"the PSP's /v1/merchant answer is off-contract: {exc}") from None

    async def create_checkout(self, order: CheckoutOrder) -> Created:
        body: dict[str, Any] = {
            "order_id": order.order_id,
            "amount": order.amount,
            "currency": order.currency,
            "terminal_id": order.terminal_id,
        }
        # An absent optional field is the PSP's default, so a retry that
        # leaves them out is still the same request.
        if order.expires_in is not None:
            body["expires_in"] = order.expires_in
        if order.description is not None:
            body["description"] = order.description
        started = time.perf_counter()
        status, answer, attempts = await self._request("POST", "/v1/checkouts", body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        body = _answer(status, answer, "POST /v1/checkouts")
        ticket = body.pop("display_ticket", None)
        if ticket is not None and not isinstance(ticket, dict):
            raise PspRefused("the PSP's display_ticket is off-contract: not an object")
        qr_payload = body.pop("qr_payload", None)
        if qr_payload is not None and not isinstance(qr_payload, str):
            raise PspRefused("the PSP's qr_payload is off-contract: not a string")
        checkout = _checkout(body)
        try:
            check_qr_payload(qr_payload, checkout.qr_url)
        except InvalidValue as exc:
            raise PspRefused(f"the PSP's qr_payload is off-contract: {exc.message}") from None
        return Created(
            checkout,
            new=status == 201,
            attempts=attempts,
            elapsed_ms=elapsed_ms,
            display_ticket=ticket,
            qr_payload=qr_payload,
        )

    async def public_keys(self) -> tuple[PublicKey, ...] | None:
        """The PSP's signing keys (``GET /v1/keys``); None from a PSP that
        has no such endpoint (404), which signs nothing."""
        try:
            body = await self._call("GET", "/v1/keys")
        except PspRefused as exc:
            if exc.status == 404:
                return None
            raise
        try:
            entries = body["keys"]
            keys = tuple(PublicKey.parse(entry["public_key"]) for entry in entries)
        except (KeyError, TypeError, InvalidValue) as exc:
            raise PspRefused(f"the PSP's /v1/keys answer is off-contract: {exc}") from None
        if not keys:
            raise PspRefused("the PSP's /v1/keys answer lists no key")
        return keys

    async def get_checkout(
        self, checkout_id: str, *, attempts: int | None = None
    ) -> CheckoutSnapshot:
        return _checkout(await self._call("GET", f"/v1/checkouts/{checkout_id}", attempts=attempts))

    async def cancel_checkout(self, checkout_id: str) -> CheckoutSnapshot:
        """The cancelled checkout; PspRefused with psp_code ``already_paid``
        or ``expired`` when it is too late."""
        return _checkout(await self._call("POST", f"/v1/checkouts/{checkout_id}/cancel"))

    # The plumbing.

    async def _call(
        self, method: str, path: str, body: Any = None, *, attempts: int | None = None
    ) -> dict[str, Any]:
        status, answer, _ = await self._request(method, path, body, attempts=attempts)
        return _answer(status, answer, f"{method} {path}")

    async def _request(
        self, method: str, path: str, body: Any = None, *, attempts: int | None = None
    ) -> tuple[int, bytes, int]:
        """(status, body, attempts made)."""
        if self._session is None:
            raise RuntimeError("use PspClient as an async context manager")
        total = attempts or self._attempts
        backoff = Backoff(initial=0.1, maximum=2.0)
        url = self.base_url + path
        for attempt in range(1, total + 1):
            started = time.perf_counter()
            try:
                async with self._session.request(method, url, json=body) as response:
                    raw = await response.read()
                    status = response.status
                log.debug(
                    "%s %s -> %d in %.1f ms",
                    method,
                    path,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
                if status in TRANSIENT_STATUSES:
                    raise _Transient(f"HTTP {status}")
                return status, raw, attempt
            except (aiohttp.ClientError, TimeoutError, _Transient) as exc:
                reason = _describe(exc)
            if attempt == total:
                raise PspUnreachable(
                    f"the PSP at {self.base_url} did not answer {method} {path} "
                    f"({reason}), {total} attempt{'s' if total > 1 else ''}"
                )
            delay = backoff.next_delay()
            shown = loggable(reason)  # an error's text may quote the answer
            log.info("%s %s: %s; attempt %d in %.2f s", method, path, shown, attempt + 1, delay)
            if self._on_retry is not None:
                self._on_retry(RetryNotice(f"{method} {path}", attempt + 1, total, delay, reason))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _answer(status: int, raw: bytes, request: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; the PSP's own words otherwise."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise PspRefused(f"the PSP answered {request} with something other than a JSON object")
        return body
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if status == 401:
        raise KeyRejected(f"merchant key rejected by the PSP ({message or 'HTTP 401'})")
    raise PspRefused(
        f"the PSP refused {request}: {message or 'no reason given'} ({code or 'no code'}, "
        f"HTTP {status})",
        psp_code=code if isinstance(code, str) else None,
        status=status,
    )


def _checkout(body: dict[str, Any]) -> CheckoutSnapshot:
    # An EMV merchant's answers also carry qr_payload, which is the API's,
    # not the snapshot's (create_checkout keeps it apart).
    snapshot = {k: v for k, v in body.items() if k != "qr_payload"}
    try:
        return CheckoutSnapshot.from_dict(snapshot)
    except InvalidValue as exc:
        raise PspRefused(f"the PSP's checkout is off-contract: {exc.message}") from None
