"""``GET /pay`` and ``POST /pay``: the landing page that takes a payment
code as text, a URL of this PSP's or an EMV payload around one, and sends
the browser on to its payment page (303); anything else gets the form
again with the reason (400), and nothing is looked up or written. The
rules are ``psp_server.core.landing``'s."""

from __future__ import annotations

import logging

from aiohttp import web

from psp_server.api.appkeys import SETTINGS
from psp_server.api.http import NO_STORE, html_page_response
from psp_server.core.landing import MAX_TEXT, destination_of
from psp_server.web import landing_page
from psp_server.web.forms import read_form
from scan2pay_common.errors import InvalidValue
from scan2pay_common.logtext import loggable

log = logging.getLogger(__name__)


async def landing(request: web.Request) -> web.Response:
    """The form, or where the code given (``code``, in the query or the
    posted form) leads. A GET without a code is the empty form; a POST
    without one is refused like any text that is no code."""
    public_url = request.app[SETTINGS].require_public_url()
    if request.method == "POST":
        text = (await read_form(request)).get("code", "")
    else:
        text = request.query.get("code", "")
        if not text.strip():
            return html_page_response(landing_page.render(public_url=public_url))
    try:
        destination = destination_of(text, public_url)
    except InvalidValue as exc:
        # The reason only: the text may hold a live payment code.
        log.info("landing page refused a code (%s): %s", exc.code, loggable(exc.message))
        page = landing_page.render(
            public_url=public_url, problem=exc.message, typed=text[:MAX_TEXT]
        )
        return html_page_response(page, status=400)
    # Relative, from /pay: the page on whichever address the browser used.
    # No referrer, as on the pages: a /pay?code= URL holds the code.
    headers = {**NO_STORE, "Location": destination.path, "Referrer-Policy": "no-referrer"}
    return web.Response(status=303, headers=headers)
