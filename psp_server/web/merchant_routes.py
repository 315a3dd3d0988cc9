"""``/merchant``: sign-in with the merchant key, the live board, cancelling
a pending checkout from it, and sign-out (docs/web.md, "The merchant board").

Every state-changing request here passes the same checks before it changes
anything: a session (``merchant_session``), an ``Origin`` of this site when
the browser sends one, and the CSRF token in the form's ``csrf`` field or
an ``X-CSRF-Token`` header. None of these routes is behind the wallet and
QR rate limits (``abuse.py``): a merchant key has 192 random bits, so a
guess costs the guesser a request and teaches nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from psp_server.api.appkeys import BOARD_HUB, CLOCK, RELAY_WAKE, STORAGE
from psp_server.api.envelope import error_response
from psp_server.api.guards.request_context import stream_headers
from psp_server.core import credentials
from psp_server.core.errors import Refusal, Refused
from psp_server.core.records import Merchant
from psp_server.web import board_rows, merchant_pages, merchant_session, session_keys
from psp_server.web.board_hub import BoardHub
from psp_server.web.board_stream import BoardStream, parse_since
from psp_server.web.forms import read_form
from psp_server.web.session_keys import Session
from scan2pay_common import pairing_codes
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_checkout_id

SESSION_SECONDS = session_keys.SESSION_MS // 1000
# The sign-in form's token lives as long as a person may take to find the key.
FORM_SECONDS = 3600
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # Not the QR page's no-referrer: under it, the browser sends "Origin:
    # null" with the board's own posts, which the origin check refuses.
    # No URL here holds a secret, and no referrer leaves the site.
    "Referrer-Policy": "same-origin",
}


def _root(request: web.Request) -> str:
    """From the request's URL back to the application's root (relative, so
    that a proxy's path prefix stays): "" for /merchant, "../" one down."""
    return "../" * (request.path.count("/") - 1)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=_PAGE_HEADERS)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=_PAGE_HEADERS)


def _json_error(status: int, code: str, message: str) -> web.Response:
    # The charset as web.json_response gives the board's other answers.
    return error_response(
        status, code, message, headers=_PAGE_HEADERS, content_type="application/json; charset=utf-8"
    )


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _to_board(request: web.Request, pairing: str = "") -> web.Response:
    """303 to /merchant, or to its pairing page with ``pairing``'s code, by a
    relative URL (see ``_root``)."""
    target = f"merchant/pair?code={pairing}" if pairing else "merchant"
    return web.Response(status=303, headers={"Location": _root(request) + target, **_PAGE_HEADERS})


def pairing_code(raw: str | None) -> str:
    """A pairing code to go on to after signing in, ungrouped; "" for
    anything else, so that the redirect can only ever name a code."""
    try:
        return pairing_codes.parse_code(raw) if raw else ""
    except InvalidValue:
        return ""


async def _signed_in(request: web.Request) -> tuple[Session, Merchant] | None:
    cookie = request.cookies.get(merchant_session.session_cookie_name(request))
    if not cookie:
        return None
    keys = merchant_session.keys(request.app)
    session = keys.verify(cookie, now=request.app[CLOCK].now_ms())
    if session is None:
        return None
    found = await request.app[STORAGE].merchant_with_key_hash(session.merchant_id)
    if found is None or not keys.bound_to(session, found[1], found[2]):
        return None  # the key was rotated or revoked since
    return session, found[0]


def _sign_in_page(
    request: web.Request, *, status: int = 200, error: str = "", notice: str = "", then: str = ""
) -> web.Response:
    """The form with a fresh double-submit secret in its cookie and field;
    ``then``, a pairing code, sends the merchant on to pair it."""
    cookie = session_keys.new_form_cookie()
    field = merchant_session.keys(request.app).form_field(cookie)
    response = _html(
        merchant_pages.sign_in(
            root=_root(request), form_token=field, error=error, notice=notice, then=then
        ),
        status,
    )
    merchant_session.set_cookie(
        request, response, merchant_session.form_cookie_name(request), cookie, FORM_SECONDS
    )
    return response


async def board_page(request: web.Request) -> web.Response:
    found = await _signed_in(request)
    if found is None:
        stale = merchant_session.session_cookie_name(request) in request.cookies
        notice = "Your session has ended. Sign in again." if stale else ""
        response = _sign_in_page(request, notice=notice)
        if stale:
            merchant_session.clear_cookie(
                request, response, merchant_session.session_cookie_name(request)
            )
        return response
    session, merchant = found
    csrf = merchant_session.keys(request.app).csrf_token(session)
    return _html(merchant_pages.board(root=_root(request), merchant=merchant.name, csrf=csrf))


async def sign_in(request: web.Request) -> web.Response:
    if not merchant_session.same_origin(request):
        return _sign_in_page(
            request, status=403, error="This sign-in came from another site and was refused."
        )
    form = await read_form(request)
    field = form.get("csrf")
    field = field if isinstance(field, str) else None
    cookie = request.cookies.get(merchant_session.form_cookie_name(request))
    if not merchant_session.keys(request.app).form_ok(cookie, field):
        return _sign_in_page(
            request, status=403, error="The sign-in form had expired. Enter the key again."
        )
    raw_key = form.get("key")
    key = raw_key.strip() if isinstance(raw_key, str) else ""
    then = pairing_code(form.get("then"))
    merchant = await request.app[STORAGE].merchant_by_key(key) if key else None
    current = await request.app[STORAGE].merchant_with_key_hash(merchant.id) if merchant else None
    if merchant is None or current is None:
        # The same form and token again (it was good): no cookie changes.
        page = merchant_pages.sign_in(
            root=_root(request),
            form_token=field or "",
            error="That merchant key was not accepted. Check it and try again.",
            then=then,
        )
        return _html(page, 401)
    session_cookie = merchant_session.keys(request.app).issue(
        merchant.id, credentials.hash_secret(key), current[2], now=request.app[CLOCK].now_ms()
    )
    response = _to_board(request, then)
    merchant_session.set_cookie(
        request,
        response,
        merchant_session.session_cookie_name(request),
        session_cookie,
        SESSION_SECONDS,
    )
    merchant_session.clear_cookie(request, response, merchant_session.form_cookie_name(request))
    return response


async def _csrf_refusal(request: web.Request, session: Session) -> web.Response | None:
    """The answer to a state-changing request that fails the origin or the
    CSRF check, or None when it passes."""
    if not merchant_session.same_origin(request):
        why = "This request came from another site and was refused; nothing was changed."
    else:
        token = request.headers.get("X-CSRF-Token")
        if token is None:
            token = (await read_form(request)).get("csrf")
        if merchant_session.keys(request.app).csrf_ok(session, token):
            return None
        why = "This request did not carry the board's security token; nothing was changed."
    if _wants_json(request):
        return _json_error(403, "forbidden", why)
    return _html(merchant_pages.refused(root=_root(request), title="Refused", message=why), 403)


def _not_signed_in(request: web.Request, *, page: bool = True) -> web.Response:
    why = "You are not signed in, or your session has ended. Sign in again."
    if not page or _wants_json(request):
        return _json_error(401, "unauthorized", why)
    return _html(merchant_pages.refused(root=_root(request), title="Signed out", message=why), 401)


async def sign_out(request: web.Request) -> web.Response:
    found = await _signed_in(request)
    if found is not None:
        refused = await _csrf_refusal(request, found[0])
        if refused is not None:
            return refused
        # The cookie is the session: without this, a copy of it taken
        # before the sign-out would go on working until it ran out.
        await request.app[STORAGE].end_sessions(found[1].id)
    # Signed out or never signed in: either way the cookie goes.
    response = _to_board(request)
    merchant_session.clear_cookie(request, response, merchant_session.session_cookie_name(request))
    return response


async def _allowed_change(request: web.Request) -> tuple[Session, Merchant] | web.Response:
    """The session and merchant of a state-changing request from the board,
    or the answer that refuses it (signed out, another site, no token)."""
    found = await _signed_in(request)
    if found is None:
        return _not_signed_in(request)
    refused = await _csrf_refusal(request, found[0])
    return found if refused is None else refused


async def cancel(request: web.Request) -> web.Response:
    allowed = await _allowed_change(request)
    if isinstance(allowed, web.Response):
        return allowed
    _, merchant = allowed
    now = request.app[CLOCK].now_ms()
    try:
        checkout_id = check_checkout_id(request.match_info["checkout_id"])
        checkout = await request.app[STORAGE].cancel_checkout(merchant.id, checkout_id, now=now)
    except (InvalidValue, Refused) as exc:
        request.app[RELAY_WAKE].set()  # a refusal may have recorded an expiry
        error = (exc.refusal if isinstance(exc, Refused) else Refusal.NOT_FOUND).error()
        if _wants_json(request):
            return _json_error(error.status, error.code, error.message)
        page = merchant_pages.refused(
            root=_root(request), title="Not cancelled", message=f"Not cancelled: {error.message}."
        )
        return _html(page, error.status)
    request.app[RELAY_WAKE].set()
    if _wants_json(request):
        return _json({"row": board_rows.row(checkout, now)})
    return _to_board(request)


async def session_info(request: web.Request) -> web.Response:
    """Whether the session still holds: the board asks when its stream
    fails, to tell "reconnecting" from "signed out"."""
    found = await _signed_in(request)
    if found is None:
        return _not_signed_in(request, page=False)
    return _json({"merchant": {"id": found[1].id, "name": found[1].name}})


async def stream(request: web.Request) -> web.StreamResponse:
    found = await _signed_in(request)
    if found is None:
        return _not_signed_in(request, page=False)
    since = parse_since(request.query.get("since"), request.app[CLOCK].now_ms())
    if since is None:
        message = "since must be the start of your day in ms since the epoch, within 48 hours"
        return _json_error(400, "invalid_since", message)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # nginx and its kind would hold the events back in a buffer.
            "X-Accel-Buffering": "no",
            **stream_headers(request),
        }
    )
    await response.prepare(request)

    async def session_holds() -> bool:
        return await _signed_in(request) is not None

    await BoardStream(request, response, found[1].id, since, session_holds).run()
    return response


async def _close_boards(app: web.Application) -> None:
    app[BOARD_HUB].close_all()


def add_routes(app: web.Application) -> None:
    merchant_session.install(app)
    app[BOARD_HUB] = BoardHub()
    # on_shutdown runs before aiohttp waits for the handlers still running.
    app.on_shutdown.append(_close_boards)
    app.router.add_get("/merchant", board_page)
    app.router.add_post("/merchant/sign-in", sign_in)
    app.router.add_post("/merchant/sign-out", sign_out)
    app.router.add_post("/merchant/checkouts/{checkout_id}/cancel", cancel)
    app.router.add_get("/merchant/session", session_info)
    app.router.add_get("/merchant/stream", stream)
