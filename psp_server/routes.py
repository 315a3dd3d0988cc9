"""The HTTP API's handlers. They parse, authenticate, call storage and shape
the answer; the rules live in ``checkout_machine``, the SQL in ``storage``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

from aiohttp import web

from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id
from scan2pay_common.messages import DisplayTicket
from scan2pay_common.signing import ALG, PublicKey, SigningKey, b64url
from scan2pay_common.timefmt import to_rfc3339

from .appkeys import BOARD_HUB, CLOCK, IN_FLIGHT, RELAY, RELAY_WAKE, SETTINGS, STORAGE
from .bearer import bearer_token
from .checkout_machine import effective_status
from .checkout_orders import new_checkout
from .envelope import error_body
from .errors import APIError, Refusal, Refused
from .in_flight import InFlight
from .payloads import (
    CheckoutRequest,
    EventsQuery,
    PaymentRequest,
    RefundRequest,
    check_code,
    check_idempotency_key,
)
from .storage.records import (
    Answer,
    Checkout,
    IdempotencyKey,
    KeyInfo,
    Merchant,
    Payment,
    Refund,
    Reply,
    Wallet,
)
from .web import qr_page

T = TypeVar("T")

_OPENAPI = (resources.files("psp_server") / "openapi.json").read_bytes()

# Never a code: "0" is not in the base32 alphabet codes are written in.
_NO_SUCH_CODE = "0" * 32

CREATE_CHECKOUT = "POST /v1/checkouts"
PAY = "POST /v1/payments"
REFUND = "POST /v1/checkouts/{checkout_id}/refunds"


def _dumps(body: Any) -> bytes:
    return jsonfields.dumps_unordered(body)


_JSON_TYPE = {"Content-Type": "application/json"}
# The QR page's status changes; a browser going back must ask again.
_NO_STORE = {"Cache-Control": "no-store"}
_REPLAYED = {**_JSON_TYPE, "Idempotent-Replayed": "true"}


def _json(body: Any, status: int = 200) -> web.Response:
    # Headers given whole: aiohttp's content_type argument parses the type
    # again on every answer.
    return web.Response(status=status, body=_dumps(body), headers=_JSON_TYPE)


def _send(reply: Reply) -> web.Response:
    headers = _REPLAYED if reply.replayed else _JSON_TYPE
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _answer(key: IdempotencyKey | None, ok: Callable[[T], tuple[int, Any]]) -> Answer[T]:
    """How the outcome of an operation becomes its answer: ``ok`` shapes a
    success; a refusal becomes the error the middleware would have sent, so
    that a stored refusal replays exactly as it was first answered."""

    def render(outcome: T | Refused) -> Reply:
        if isinstance(outcome, Refused):
            refused = outcome.refusal
            return Reply(refused.status, error_body(refused.code, refused.message))
        status, body = ok(outcome)
        return Reply(status, _dumps(body))

    return Answer(key, render)


def _idempotency_key(request: web.Request) -> str | None:
    try:
        return check_idempotency_key(request.headers.getall("Idempotency-Key", []))
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def _scoped(
    key: str | None, principal: str, endpoint: str, request_hash: str
) -> IdempotencyKey | None:
    return None if key is None else IdempotencyKey(principal, endpoint, key, request_hash)


def _bearer(request: web.Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise APIError("unauthorized", "send Authorization: Bearer <key>")
    return token


async def _merchant(request: web.Request) -> Merchant:
    merchant = await request.app[STORAGE].merchant_by_key(_bearer(request))
    if merchant is None:
        raise APIError("unauthorized", "unknown or revoked merchant key")
    return merchant


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        return jsonfields.load_object(raw)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def _checkout_json(checkout: Checkout, now: int) -> dict[str, Any]:
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    return checkout.snapshot(status).to_dict()


def _display_ticket(checkout: Checkout, key: SigningKey) -> dict[str, Any]:
    """The PSP's signed word that this checkout's QR may be shown on its
    merchant's terminal until it expires (docs/signing.md). Ed25519 is
    deterministic: the same checkout and key give the same bytes, so a
    retry's ticket is the first one."""
    ticket = DisplayTicket(
        checkout_id=checkout.id,
        merchant_id=checkout.merchant_id,
        qr_url=checkout.qr_url,
        amount=checkout.amount,
        currency=checkout.currency,
        terminal_id=checkout.terminal_id,
        expires_at=to_rfc3339(checkout.expires_at),
    )
    return key.sign(ticket.to_dict())


def _checkout_id(request: web.Request) -> str:
    try:
        return check_checkout_id(request.match_info["checkout_id"])
    except InvalidValue:
        raise Refusal.NOT_FOUND.error() from None


async def healthz(request: web.Request) -> web.Response:
    relay = request.app.get(RELAY)
    mqtt = "disabled" if relay is None else ("connected" if relay.connected else "disconnected")
    return _json({"status": "ok", "mqtt": mqtt, "time": to_rfc3339(request.app[CLOCK].now_ms())})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_OPENAPI, content_type="application/json")


async def list_keys(request: web.Request) -> web.Response:
    """The PSP's public keys: the active one signs, the others verify what
    they signed before a rotation. No authentication: they are public."""
    keys = await request.app[STORAGE].signing_keys()
    return _json(
        {
            "keys": [
                {
                    "kid": key.kid,
                    "alg": ALG,
                    "public_key": key.public_key,
                    "active": key.active,
                    "created_at": to_rfc3339(key.created_at),
                }
                for key in keys
            ]
        }
    )


async def jwks(request: web.Request) -> web.Response:
    """The same keys as a JSON Web Key Set (RFC 7517, with RFC 8037's
    Ed25519 keys), so that standard JOSE libraries can load them. Each key
    is its raw 32 bytes, as ``/v1/keys`` lists them, and keeps its kid."""
    keys = await request.app[STORAGE].signing_keys()
    return _json({"keys": [_jwk(key) for key in keys]})


def _jwk(key: KeyInfo) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(PublicKey.parse(key.public_key).raw),
        "kid": key.kid,
        "use": "sig",
        "alg": "EdDSA",
    }


async def get_merchant(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    return _json({"id": merchant.id, "name": merchant.name})


async def create_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    key = _idempotency_key(request)
    body = await _body(request)
    settings = request.app[SETTINGS]
    try:
        parsed = CheckoutRequest.parse(body, max_amount=settings.max_amount)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = _scoped(key, merchant.id, CREATE_CHECKOUT, parsed.fingerprint())
    now = request.app[CLOCK].now_ms()
    storage = request.app[STORAGE]
    signing_key = storage.signing_key
    public_url = settings.require_public_url()
    fresh = new_checkout(merchant.id, parsed, public_url=public_url, now=now)
    # Signed here, while the previous group's commit is on its way to disk,
    # rather than in the group's transaction, which holds up the next group.
    fresh_ticket = _display_ticket(fresh, signing_key)

    def ok(result: tuple[Checkout, bool]) -> tuple[int, Any]:
        checkout, created = result
        body = _checkout_json(checkout, now)
        body["display_ticket"] = (
            fresh_ticket if checkout == fresh else _display_ticket(checkout, signing_key)
        )
        return (201 if created else 200), body

    with request.app[IN_FLIGHT].hold(scoped):
        reply = await _storage_call(
            storage.create_checkout_reply(
                _answer(scoped, ok),
                merchant.id,
                parsed,
                public_url=public_url,
                now=now,
                fresh=fresh,
            )
        )
    if reply.status == 201:
        request.app[BOARD_HUB].created(merchant.id)  # a dict lookup when no board is open
    return _send(reply)


async def _storage_call(call: Awaitable[Reply]) -> Reply:
    """Awaits a ``*_reply`` storage call; the refusals it raises itself
    (a key reused for another request) are answered, never stored."""
    try:
        return await call
    except Refused as exc:
        raise exc.refusal.error() from None


async def get_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    checkout = await request.app[STORAGE].get_checkout(merchant.id, _checkout_id(request))
    if checkout is None:
        raise Refusal.NOT_FOUND.error()
    return _json(_checkout_json(checkout, request.app[CLOCK].now_ms()))


async def cancel_checkout(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    checkout_id = _checkout_id(request)
    try:
        checkout = await request.app[STORAGE].cancel_checkout(
            merchant.id, checkout_id, now=request.app[CLOCK].now_ms()
        )
    except Refused as exc:
        request.app[RELAY_WAKE].set()  # a refusal may have recorded an expiry
        raise exc.refusal.error() from None
    request.app[RELAY_WAKE].set()
    return _json(_checkout_json(checkout, request.app[CLOCK].now_ms()))


async def lookup_code(request: web.Request) -> web.Response:
    wants_html = _prefers_html(request)
    try:
        code = check_code(request.match_info["code"])
    except InvalidValue:
        # A malformed code costs the same lookup as an unknown one, so that
        # the time of the answer tells nothing about the code.
        code = _NO_SUCH_CODE
    found = await request.app[STORAGE].lookup_code(code)
    if found is None:
        if wants_html:
            return web.Response(status=404, text=qr_page.render_unknown(), content_type="text/html")
        raise Refusal.UNKNOWN_CODE.error()
    checkout, merchant = found
    now = request.app[CLOCK].now_ms()
    status = effective_status(checkout.status, expires_at=checkout.expires_at, now=now)
    expires_at = to_rfc3339(checkout.expires_at)
    if wants_html:
        page = qr_page.render(
            merchant=merchant.name,
            amount=checkout.amount,
            currency=checkout.currency,
            status=status.value,
            code=code,
            expires_at=expires_at,
            expires_at_ms=checkout.expires_at,
            now_ms=now,
        )
        return web.Response(text=page, content_type="text/html", headers=_NO_STORE)
    return _json(
        {
            "checkout_id": checkout.id,
            # The id too: a terminal believes an answer about the QR on its
            # screen only if it names the terminal's own merchant.
            "merchant": {"id": merchant.id, "name": merchant.name},
            "amount": checkout.amount,
            "currency": checkout.currency,
            "status": status.value,
            "expires_at": expires_at,
        }
    )


def _prefers_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept:
        return False
    return "text/html" in accept


async def pay(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    # Who is asking comes first, as on the merchant endpoints: a stranger
    # hears 401, not what else is wrong. It is a read, outside the write: a
    # bad token never joins a commit group (on SQLite a job that raises
    # there rolls back and replays the whole group), and the write is handed
    # only a wallet that was found.
    wallet = await _wallet(request, _bearer(request))
    key = _idempotency_key(request)
    try:
        parsed = PaymentRequest.parse(await _body(request))
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = _scoped(key, wallet.id, PAY, parsed.fingerprint())
    try:
        with request.app[IN_FLIGHT].hold(scoped):
            now = request.app[CLOCK].now_ms()
            reply = await _storage_call(
                storage.pay_reply(_answer(scoped, _payment_json), wallet.id, parsed.code, now=now)
            )
    finally:
        request.app[RELAY_WAKE].set()  # a payment, or a refusal that recorded an expiry
    return _send(reply)


async def _wallet(request: web.Request, token: str) -> Wallet:
    wallet = await request.app[STORAGE].wallet_by_token(token)
    if wallet is None:
        raise APIError("unauthorized", "unknown or revoked wallet token")
    return wallet


def _payment_json(result: tuple[Payment, Checkout]) -> tuple[int, Any]:
    payment, _ = result
    return 201, {
        "id": payment.id,
        "checkout_id": payment.checkout_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": "succeeded",
        "paid_at": to_rfc3339(payment.created_at),
    }


async def refund(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    key = _idempotency_key(request)
    checkout_id = _checkout_id(request)
    try:
        parsed = RefundRequest.parse(
            await _body(request), max_amount=request.app[SETTINGS].max_amount
        )
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    scoped = _scoped(key, merchant.id, REFUND, parsed.fingerprint(checkout_id))
    with request.app[IN_FLIGHT].hold(scoped):
        now = request.app[CLOCK].now_ms()
        reply = await _storage_call(
            request.app[STORAGE].refund_reply(
                _answer(scoped, _refund_json), merchant.id, checkout_id, parsed.amount, now=now
            )
        )
    request.app[RELAY_WAKE].set()
    return _send(reply)


def _refund_json(result: tuple[Refund, Checkout]) -> tuple[int, Any]:
    made, _ = result
    return 201, {
        "id": made.id,
        "checkout_id": made.checkout_id,
        "amount": made.amount,
        "currency": made.currency,
        "created_at": to_rfc3339(made.created_at),
    }


async def list_events(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    try:
        query = EventsQuery.parse(request.query.items())
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    events = await request.app[STORAGE].events_after(merchant.id, query.after, limit=query.limit)
    next_after = events[-1].seq if events else query.after
    # The payloads go out as the bytes the relay publishes, not re-encoded.
    body = b'{"events":[%s],"next_after":%d}' % (b",".join(e.payload for e in events), next_after)
    return web.Response(body=body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app[IN_FLIGHT] = InFlight()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/v1/keys", list_keys)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get("/v1/merchant", get_merchant)
    app.router.add_post("/v1/checkouts", create_checkout)
    app.router.add_get("/v1/checkouts/{checkout_id}", get_checkout)
    app.router.add_post("/v1/checkouts/{checkout_id}/cancel", cancel_checkout)
    app.router.add_post("/v1/checkouts/{checkout_id}/refunds", refund)
    app.router.add_post("/v1/payments", pay)
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/Q/{code}", lookup_code)
