"""Static till codes (docs/static-qr.md): the merchant's
``/v1/terminals/{terminal_id}/static-codes`` and ``/v1/static-codes/{id}``,
and what a printed code opens, ``/S/{CODE}``, where a customer pays the
till's checkout or types an amount (``POST /S/{CODE}/checkouts``).

The rules are the core's (``psp_server.core.static_codes``); here the
request is parsed, the store asked, and the answer shaped as JSON or, for
a browser, as a page.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from psp_server.api.appkeys import BOARD_HUB, CLOCK, RELAY_WAKE, SETTINGS, STORAGE
from psp_server.api.http import NO_STORE, checkout_json, json_body, json_response, merchant_of
from psp_server.core.errors import APIError, Refusal, Refused
from psp_server.core.payloads import check_code
from psp_server.core.records import Checkout, Merchant
from psp_server.core.static_codes import (
    ScanKind,
    StaticCode,
    StaticCodeRequest,
    code_json,
    code_payload,
    decide_scan,
    new_static_code,
)
from psp_server.stickers import Sticker, StickerFormat, render_sticker
from psp_server.storage.static_codes import StaticCodeStore
from psp_server.web import qr_page, static_page
from psp_server.web.forms import read_form
from psp_server.web.static_page import Till
from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_terminal_id
from scan2pay_common.money import parse_major
from scan2pay_common.static_codes import check_static_code_id
from scan2pay_common.timefmt import to_rfc3339

# Never a code: "0" is not in the base32 alphabet codes are written in.
_NO_SUCH_CODE = "0" * 32
_FORM = "application/x-www-form-urlencoded"


def store_of(request: web.Request) -> StaticCodeStore:
    return StaticCodeStore.of(request.app[STORAGE])


def _terminal_of(request: web.Request) -> str:
    try:
        return check_terminal_id(request.match_info["terminal_id"])
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


def static_code_id_of(request: web.Request) -> str:
    try:
        return check_static_code_id(request.match_info["code_id"])
    except InvalidValue:
        raise Refusal.STATIC_CODE_NOT_FOUND.error() from None


# The merchant's side.


async def create_static_code(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    terminal_id = _terminal_of(request)
    settings = request.app[SETTINGS]
    try:
        parsed = StaticCodeRequest.parse(await json_body(request), max_amount=settings.max_amount)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None
    code = await create_for(request, merchant.id, terminal_id, parsed)
    return json_response(code_json(code, merchant), status=201)


async def create_for(
    request: web.Request, merchant_id: str, terminal_id: str, parsed: StaticCodeRequest
) -> StaticCode:
    """A new code for the merchant's till, stored: for the API and the board
    alike."""
    code = new_static_code(
        merchant_id,
        terminal_id,
        parsed,
        public_url=request.app[SETTINGS].require_public_url(),
        now=request.app[CLOCK].now_ms(),
    )
    await store_of(request).create(code)
    return code


async def list_static_codes(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    codes = await store_of(request).list(merchant.id, _terminal_of(request))
    return json_response({"static_codes": [code_json(code, merchant) for code in codes]})


async def revoke_static_code(request: web.Request) -> web.Response:
    merchant = await merchant_of(request)
    code_id = static_code_id_of(request)
    try:
        code = await store_of(request).revoke(merchant.id, code_id, now=request.app[CLOCK].now_ms())
    except Refused as exc:
        raise exc.refusal.error() from None
    return json_response(code_json(code, merchant))


_STICKER_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}


async def static_code_sticker(request: web.Request) -> web.Response:
    """The code's sticker to print (``psp_server.stickers``): the QR with its
    quiet zone, the merchant's name, the till's label, the short id and
    "Scan to pay". A revoked code has none: print its replacement's."""
    merchant = await merchant_of(request)
    code = await store_of(request).get(merchant.id, static_code_id_of(request))
    if code is None:
        raise Refusal.STATIC_CODE_NOT_FOUND.error()
    if code.revoked:
        raise Refusal.STATIC_CODE_REVOKED.error()
    if request.match_info["fmt"] not in _STICKER_TYPES:
        raise Refusal.STATIC_CODE_NOT_FOUND.error()  # no sticker in that format
    return await sticker_response(code, merchant, request.match_info["fmt"])


async def sticker_response(code: StaticCode, merchant: Merchant, fmt: str) -> web.Response:
    """The code's sticker in ``fmt`` (one of the route's png, svg, pdf), for
    the API and the board alike; its QR encodes the code's EMV payload where
    the merchant's codes are EMV payloads."""
    sticker = Sticker(
        url=code.url,
        merchant_name=merchant.name,
        till_label=code.label,
        short_id=code.short_id,
        payload=code_payload(code, merchant),
    )
    shape: StickerFormat = "svg" if fmt == "svg" else "pdf" if fmt == "pdf" else "png"
    # Drawing takes some milliseconds of CPU: off the event loop.
    body = await asyncio.to_thread(render_sticker, sticker, shape)
    filename = f"sticker-{code.terminal_id}-{code.short_id}.{shape}"
    return web.Response(
        body=body,
        headers={
            "Content-Type": _STICKER_TYPES[shape],
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


# The customer's side.


def _code_of(request: web.Request) -> str:
    try:
        return check_code(request.match_info["code"])
    except InvalidValue:
        # A malformed code costs the same lookup as an unknown one.
        return _NO_SUCH_CODE


def _prefers_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" not in accept and "text/html" in accept


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=NO_STORE)


def _checkout_with_code(checkout: Checkout, now: int, merchant: Merchant) -> dict[str, Any]:
    body = checkout_json(checkout, now, merchant)
    body["code"] = checkout.code
    return body


async def scan_static_code(request: web.Request) -> web.Response:
    wants_html = _prefers_html(request)
    found = await store_of(request).scan(_code_of(request))
    if found is None:
        if wants_html:
            return _html(static_page.render_unknown(), status=404)
        raise Refusal.STATIC_CODE_NOT_FOUND.error()
    code, merchant, till_checkout = found
    now = request.app[CLOCK].now_ms()
    scan = decide_scan(code, till_checkout, now=now)
    named = Till(merchant.name, code.label, code.short_id)
    if scan.kind is ScanKind.REVOKED:
        if wants_html:
            return _html(static_page.render_revoked(named), status=410)
        raise Refusal.STATIC_CODE_REVOKED.error()
    if wants_html:
        if scan.checkout is not None:
            return _html(_till_checkout_page(scan.checkout, merchant.name, code, now))
        if scan.kind is ScanKind.OPEN_AMOUNT and code.open_amount is not None:
            return _html(
                static_page.render_open_amount(named, code=code.code, open_amount=code.open_amount)
            )
        return _html(static_page.render_nothing_yet(named))
    return json_response(
        {
            "merchant": {"name": merchant.name},
            "terminal": {"id": code.terminal_id, "label": code.label},
            "short_id": code.short_id,
            "checkout": (
                None if scan.checkout is None else _checkout_with_code(scan.checkout, now, merchant)
            ),
            "open_amount": None
            if scan.kind is not ScanKind.OPEN_AMOUNT or code.open_amount is None
            else code.open_amount.to_json(),
        }
    )


def _till_checkout_page(checkout: Checkout, merchant: str, code: StaticCode, now: int) -> str:
    """The till's checkout's own payment page, as its /Q/ code opens it."""
    return qr_page.render(
        merchant=merchant,
        amount=checkout.amount,
        currency=checkout.currency,
        status="pending",
        code=checkout.code,
        expires_at=to_rfc3339(checkout.expires_at),
        expires_at_ms=checkout.expires_at,
        now_ms=now,
        till=(code.label, code.short_id),
    )


async def create_static_checkout(request: web.Request) -> web.Response:
    """A checkout of the amount the customer typed, at the code's till. As
    JSON, ``{"amount": minor units}`` answers 201 with the checkout; as a
    form (the page's), ``amount`` in major units answers 303 to the
    checkout's payment page, or the form again with what was wrong, when
    the client asks for a page, and otherwise as the JSON body does."""
    code = _code_of(request)
    store = store_of(request)
    settings = request.app[SETTINGS]
    now = request.app[CLOCK].now_ms()
    # A form's post asks for a page back when a browser sends it. A client
    # that asks for no page may still label a JSON body as a form (urllib
    # does by default): a body that opens as a JSON object is read as one.
    as_form = request.content_type == _FORM and not (await request.read()).lstrip().startswith(b"{")
    if as_form and _prefers_html(request):
        return await _create_from_form(request, store, code, now)
    if as_form:
        amount = await _typed_major_amount(request, store, code)
    else:
        body = await json_body(request)
        try:
            jf.check_fields(body, required=frozenset({"amount"}))
        except InvalidValue as exc:
            raise APIError.from_invalid(exc) from None
        amount = body["amount"]
    try:
        checkout, _, merchant = await store.create_checkout(
            code, amount, now=now, public_url=settings.require_public_url()
        )
    except Refused as exc:
        raise exc.refusal.error() from None
    request.app[RELAY_WAKE].set()  # its checkout.created event, for the till's terminal
    request.app[BOARD_HUB].created(checkout.merchant_id)
    return json_response(_checkout_with_code(checkout, now, merchant), status=201)


async def _typed_major_amount(request: web.Request, store: StaticCodeStore, code: str) -> object:
    """A form's ``amount`` in the code's currency's major units, as minor
    units for the rules to judge (a code that takes no typed amount is
    refused there, with the JSON body's words)."""
    typed = (await read_form(request)).get("amount", "")
    found = await store.scan(code)
    if found is None:
        raise Refusal.STATIC_CODE_NOT_FOUND.error()
    static = found[0]
    if static.open_amount is None:
        return typed
    try:
        return parse_major(typed, static.open_amount.currency)
    except InvalidValue as exc:
        raise APIError.from_invalid(exc) from None


async def _create_from_form(
    request: web.Request, store: StaticCodeStore, code: str, now: int
) -> web.Response:
    typed = (await read_form(request)).get("amount", "")
    found = await store.scan(code)
    if found is None:
        return _html(static_page.render_unknown(), status=404)
    static, merchant, _ = found
    named = Till(merchant.name, static.label, static.short_id)
    if static.revoked:
        return _html(static_page.render_revoked(named), status=410)
    if static.open_amount is None:
        # Nothing to type here: the page shows what the till has.
        return web.Response(status=303, headers={"Location": "../" + code, **NO_STORE})
    problem: str | None
    try:
        amount = parse_major(typed, static.open_amount.currency)
    except InvalidValue as exc:
        problem = exc.message
    else:
        try:
            checkout, _, _ = await store.create_checkout(
                code, amount, now=now, public_url=request.app[SETTINGS].require_public_url()
            )
        except Refused as exc:
            if exc.refusal is Refusal.TILL_HAS_CHECKOUT:
                return web.Response(status=303, headers={"Location": "../" + code, **NO_STORE})
            problem = exc.refusal.message
        else:
            request.app[RELAY_WAKE].set()  # its checkout.created event
            request.app[BOARD_HUB].created(checkout.merchant_id)
            location = f"../../Q/{checkout.code}"
            return web.Response(status=303, headers={"Location": location, **NO_STORE})
    page = static_page.render_open_amount(
        named,
        code=code,
        open_amount=static.open_amount,
        problem=problem,
        typed=typed[:32],
        again=True,
    )
    return _html(page, status=422)
