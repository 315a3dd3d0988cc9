"""``/merchant/pair``: the board's pairing page, approving a terminal's code,
and unpairing a terminal (docs/pairing.md). The same checks as every other
board form run first (a session, the origin, the CSRF token:
``merchant_routes``); then approvals are rate-limited per client address
and per code tried. Every refusal is the page again, with what went wrong
said and nothing changed."""

from __future__ import annotations

import hashlib
import math

from aiohttp import web

from psp_server.api.appkeys import APPROVALS_PER_CODE, APPROVALS_PER_IP, PAIRING
from psp_server.api.guards.abuse import client_key
from psp_server.core.records import Merchant
from psp_server.pairing.store import PairingRefused
from psp_server.web import merchant_session
from psp_server.web.forms import read_form
from psp_server.web.merchant_routes import (
    _allowed_change,
    _html,
    _root,
    _sign_in_page,
    _signed_in,
)
from psp_server.web.pairing_pages import Listed, pair
from psp_server.web.session_keys import Session
from scan2pay_common import pairing_codes
from scan2pay_common.errors import InvalidValue

# What may come back from a QR's ?code=: the code's own characters, grouped or not.
_CODE_CHARS = set(pairing_codes.ALPHABET + pairing_codes.ALPHABET.lower() + "-")


def prefilled(raw: str | None) -> str:
    """The code from the URL, if it can be a code; else nothing (the page
    never repeats arbitrary text from a link)."""
    if not raw or len(raw) > 20 or not set(raw) <= _CODE_CHARS:
        return ""
    try:
        return pairing_codes.grouped(pairing_codes.parse_code(raw))
    except InvalidValue:
        return ""


async def _page(
    request: web.Request,
    session: Session,
    merchant: Merchant,
    *,
    status: int = 200,
    code: str = "",
    terminal_id: str = "",
    error: str = "",
    notice: str = "",
) -> web.Response:
    terminals = await request.app[PAIRING].store.terminals(merchant.id)
    html = pair(
        root=_root(request),
        merchant=merchant.name,
        merchant_id=merchant.id,
        csrf=merchant_session.keys(request.app).csrf_token(session),
        terminals=[Listed(t.terminal_id, t.paired_at, t.collected) for t in terminals],
        code=code,
        terminal_id=terminal_id,
        error=error,
        notice=notice,
    )
    return _html(html, status)


async def pair_page(request: web.Request) -> web.Response:
    code = prefilled(request.query.get("code"))
    found = await _signed_in(request)
    if found is None:
        notice = "Sign in to pair the terminal." if code else ""
        return _sign_in_page(request, notice=notice, then=code.replace("-", ""))
    return await _page(request, *found, code=code)


def _waited(limiter_wait: float) -> str:
    seconds = max(1, math.ceil(limiter_wait))
    return f"Too many attempts; try again in {seconds} seconds. Nothing was changed."


async def approve(request: web.Request) -> web.Response:
    allowed = await _allowed_change(request)
    if isinstance(allowed, web.Response):
        return allowed
    session, merchant = allowed
    form = await read_form(request)
    code_text = form.get("code", "")
    terminal_text = form.get("terminal_id", "").strip()
    shown = {"code": code_text[:40], "terminal_id": terminal_text[:64]}
    if form.get("merchant", merchant.id) != merchant.id:
        # A page left open while someone else signed in on this browser.
        error = (
            "This form was for another merchant than the one signed in now;"
            " reload the page. Nothing was changed."
        )
        return await _page(request, session, merchant, status=403, error=error, **shown)
    per_ip = request.app.get(APPROVALS_PER_IP)
    wait = per_ip.take(client_key(request)) if per_ip is not None else 0.0
    if wait:
        return await _page(request, session, merchant, status=429, error=_waited(wait), **shown)
    try:
        code = pairing_codes.parse_code(code_text)
    except InvalidValue as exc:
        error = f"Not paired: {exc.message}."
        return await _page(request, session, merchant, status=422, error=error, **shown)
    per_code = request.app.get(APPROVALS_PER_CODE)
    wait = per_code.take(hashlib.sha256(code.encode()).hexdigest()) if per_code is not None else 0.0
    if wait:
        return await _page(request, session, merchant, status=429, error=_waited(wait), **shown)
    try:
        approval = await request.app[PAIRING].approve(code, merchant.id, terminal_text)
    except InvalidValue as exc:
        error = f"Not paired: {exc.message}."
        return await _page(request, session, merchant, status=422, error=error, **shown)
    except PairingRefused as exc:
        error = f"Not paired: {exc.message}."
        return await _page(request, session, merchant, status=exc.status, error=error, **shown)
    notice = f"Terminal {approval.terminal_id} is paired: it shows “Ready” within seconds."
    if approval.reload_problem:
        notice += f" The broker has not reloaded yet: {approval.reload_problem}."
    return await _page(request, session, merchant, notice=notice)


async def unpair(request: web.Request) -> web.Response:
    allowed = await _allowed_change(request)
    if isinstance(allowed, web.Response):
        return allowed
    session, merchant = allowed
    terminal_text = (await read_form(request)).get("terminal_id", "")
    try:
        done = await request.app[PAIRING].unpair(merchant.id, terminal_text)
    except InvalidValue as exc:
        error = f"Not unpaired: {exc.message}."
        return await _page(request, session, merchant, status=422, error=error)
    except PairingRefused as exc:
        error = f"Not unpaired: {exc.message}."
        return await _page(request, session, merchant, status=exc.status, error=error)
    notice = (
        f"Terminal {done.terminal_id} is unpaired: the broker no longer lets it in,"
        " and it shows its pairing screen again."
    )
    if done.reload_problem:
        notice += f" The broker has not reloaded yet: {done.reload_problem}."
    return await _page(request, session, merchant, notice=notice)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/merchant/pair", pair_page)
    app.router.add_post("/merchant/pair", approve)
    app.router.add_post("/merchant/pair/unpair", unpair)
