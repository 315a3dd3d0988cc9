"""``/merchant/static-codes``: the board's page of printed till codes, making
and revoking one, and printing its sticker (docs/static-qr.md). Every
state-changing request passes the board's checks first (a session, the
origin, the CSRF token: ``merchant_routes``); a refusal is the page again,
saying what was wrong, with nothing changed."""

from __future__ import annotations

from aiohttp import web

from psp_server.api.appkeys import CLOCK, SETTINGS
from psp_server.api.static_codes import create_for, sticker_response, store_of
from psp_server.core.errors import Refused
from psp_server.core.records import Merchant
from psp_server.core.static_code_input import request_in_major_units
from psp_server.core.static_codes import StaticCodeRequest
from psp_server.web import merchant_session
from psp_server.web.forms import read_form
from psp_server.web.merchant_routes import (
    _allowed_change,
    _html,
    _not_signed_in,
    _root,
    _signed_in,
)
from psp_server.web.session_keys import Session
from psp_server.web.static_code_pages import static_codes
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_terminal_id
from scan2pay_common.static_codes import check_static_code_id


async def _page(
    request: web.Request,
    session: Session,
    merchant: Merchant,
    *,
    status: int = 200,
    error: str = "",
    notice: str = "",
) -> web.Response:
    codes = await store_of(request).list(merchant.id)
    csrf = merchant_session.keys(request.app).csrf_token(session)
    html = static_codes(
        root=_root(request),
        merchant=merchant.name,
        csrf=csrf,
        codes=codes,
        error=error,
        notice=notice,
    )
    return _html(html, status)


def _back(request: web.Request) -> web.Response:
    """303 to the page, relative, from one level below it."""
    target = "../../static-codes" if request.path.endswith("/revoke") else "static-codes"
    return web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})


async def codes_page(request: web.Request) -> web.Response:
    found = await _signed_in(request)
    if found is None:
        return _not_signed_in(request)
    return await _page(request, *found)


def _request_of(form: dict[str, str], max_amount: int) -> tuple[str, StaticCodeRequest]:
    terminal = check_terminal_id(form.get("terminal", "").strip())
    request = request_in_major_units(
        label=form.get("label", "").strip() or None,
        currency=form.get("currency", "").strip().upper(),
        least=form.get("min", ""),
        most=form.get("max", ""),
        max_amount=max_amount,
    )
    return terminal, request


async def create(request: web.Request) -> web.Response:
    allowed = await _allowed_change(request)
    if isinstance(allowed, web.Response):
        return allowed
    session, merchant = allowed
    settings = request.app[SETTINGS]
    try:
        terminal, parsed = _request_of(await read_form(request), settings.max_amount)
    except InvalidValue as exc:
        return await _page(request, session, merchant, status=422, error=exc.message)
    await create_for(request, merchant.id, terminal, parsed)
    return _back(request)


async def revoke(request: web.Request) -> web.Response:
    allowed = await _allowed_change(request)
    if isinstance(allowed, web.Response):
        return allowed
    session, merchant = allowed
    try:
        code_id = check_static_code_id(request.match_info["code_id"])
        await store_of(request).revoke(merchant.id, code_id, now=request.app[CLOCK].now_ms())
    except (InvalidValue, Refused):
        return await _page(request, session, merchant, status=404, error="No such code.")
    return _back(request)


async def sticker(request: web.Request) -> web.Response:
    found = await _signed_in(request)
    if found is None:
        return _not_signed_in(request)
    _, merchant = found
    try:
        code_id = check_static_code_id(request.match_info["code_id"])
    except InvalidValue:
        raise web.HTTPNotFound() from None
    code = await store_of(request).get(merchant.id, code_id)
    if code is None or code.revoked:
        raise web.HTTPNotFound()
    return await sticker_response(code, merchant, request.match_info["fmt"])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/merchant/static-codes", codes_page)
    app.router.add_post("/merchant/static-codes", create)
    app.router.add_post("/merchant/static-codes/{code_id}/revoke", revoke)
    app.router.add_get("/merchant/static-codes/{code_id}/sticker.{fmt:png|svg|pdf}", sticker)
