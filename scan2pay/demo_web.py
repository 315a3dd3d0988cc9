"""The demo's display mirror: ``GET /demo`` shows the emulated terminal's
display live in a browser, links to the payment page of the QR it shows,
starts new checkouts through the cashier bridge's code path, and lends the
demo wallet to the browser.

The routes are added to the PSP's own application (``start_server(routes=)``)
rather than served on a port of their own, so that the mirror and the QR
page share an origin: the wallet token the mirror puts in ``localStorage``
is then the one the QR page pays with.

    GET  /demo                  the page (static/mirror.js brings it to life)
    GET  /demo/display.png?n=N  the latest frame, scaled up, as PNG
    GET  /demo/stream           server-sent events: a message per new frame,
                                a "checkout" event per change of the checkout
    POST /demo/checkouts        {"amount": "4.20"} (JSON or a form): a new checkout
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from PIL import Image

from cashier_bridge.errors import BridgeError
from cashier_bridge.flow import run_checkout
from cashier_bridge.model import BridgeConfig, CheckoutOrder, Step
from hardware.base import Content
from psp_server.api.appkeys import SETTINGS
from psp_server.core.errors import APIError
from psp_server.web.forms import read_form
from psp_server.web.layout import page
from scan2pay_common.emv import EmvError, payment_url
from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import check_minor_amount, format_display, parse_major

from .demo_display import DemoDisplay, Shown
from .wallet import SCALE

log = logging.getLogger(__name__)

DEFAULT_AMOUNT = "4.20"
TOKEN_HEADER = "X-Demo-Token"  # noqa: S105 - a header's name, not a token
# The countdown redraws the screen every second; a stream sends frames of
# one screen at most this often, and a new screen at once.
MIN_GAP = 0.25
KEEPALIVE = 15.0  # seconds; a comment line keeps proxies from closing an idle stream
RETRY_MS = 1000  # what EventSource waits before it reconnects by itself
_COUNTDOWN = re.compile(r"\d+:\d\d")
_NO_STORE = {"Cache-Control": "no-store"}


@web.middleware
async def own_host_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The demo's pages answer only to loopback addresses, ``localhost`` and
    the name in its public URL. A page on another site whose name is made to
    resolve to 127.0.0.1 (DNS rebinding) is same-origin with itself, not with
    us: its requests name its own host, and without this check it could read
    the demo's tokens. An address or ``localhost`` cannot be rebound, so any
    port goes (a relay in front of the demo names its own)."""
    if request.path.startswith("/demo") and not _own_host(request):
        raise APIError(
            "forbidden",
            "the demo answers only at its own address (127.0.0.1, localhost or its public URL)",
            status=403,
        )
    return await handler(request)


_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def _own_host(request: web.Request) -> bool:
    try:
        named = urlsplit(f"//{request.host}")
        hostname = named.hostname
        _ = named.port  # a malformed port is no host of ours
    except ValueError:
        return False
    if hostname in _LOOPBACK_NAMES:
        return True
    settings = request.app.get(SETTINGS)
    public = settings.public_url if settings is not None else None
    return public is not None and urlsplit(public).netloc.lower() == request.host.lower()


def describe(content: Content) -> str:
    """What a screen says, for the image's alt text and the live status line.
    The countdown is left out: the status would otherwise be announced every
    second."""
    if content.kind == "qr":
        words = [
            line
            for line in content.lines
            if line != "Scan to pay" and not _COUNTDOWN.fullmatch(line)
        ]
        return "a QR code to pay " + ", ".join(words) if words else "a QR code"
    return ", ".join(content.lines) or "a blank screen"


def _pay_link(encoded: str | None) -> str | None:
    """The URL to pay what the screen's QR encodes, a URL or an EMV payload."""
    if encoded is None:
        return None
    try:
        return payment_url(encoded)
    except EmvError:
        return None


def frame_png(image: Image.Image, scale: int = SCALE) -> bytes:
    """The frame ``scale`` times its size, each panel pixel a square of
    pixels (nearest neighbour: no blur between the QR's modules)."""
    mode = "RGB" if image.mode == "RGB" else "L"
    big = image.convert(mode).resize(
        (image.width * scale, image.height * scale), Image.Resampling.NEAREST
    )
    out = io.BytesIO()
    big.save(out, format="PNG")
    return out.getvalue()


@dataclass
class CheckoutRun:
    """One checkout on the demo's lane, as the page shows it."""

    order: CheckoutOrder
    on_change: Callable[[], None] = field(repr=False)  # tells the streams
    state: str = "running"  # running, then paid, cancelled, expired or failed
    message: str = "starting"
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def step(self, step: Step) -> None:
        if self.running:
            self.message = step.message
            self.on_change()

    def finish(self, state: str, message: str) -> None:
        if self.running:
            self.state, self.message = state, message
            self.on_change()

    def public(self) -> dict[str, Any]:
        amount = format_display(self.order.amount, self.order.currency)
        head = f"Checkout {self.order.order_id} for {amount}"
        if self.running:
            text = f"{head}: {self.message}"
        elif self.state == "failed":
            text = f"{head} failed: {self.message}"
        else:
            text = f"{head}: {self.state}."
        return {
            "order_id": self.order.order_id,
            "amount": self.order.amount,
            "currency": self.order.currency,
            "amount_text": amount,
            "state": self.state,
            "text": text,
        }


@dataclass(frozen=True)
class DemoParts:
    """What the mirror needs of the demo once its PSP is up."""

    bridge: BridgeConfig
    wallet_token: str
    wallet_name: str
    merchant_name: str


class DisplayMirror:
    """The demo's pages. Made on the event loop before the PSP starts (its
    ``add_routes`` is the PSP's routes hook); ``ready`` completes it."""

    def __init__(self, display: DemoDisplay, *, terminal_id: str, currency: str) -> None:
        self._loop = asyncio.get_running_loop()
        self.display = display
        self.terminal_id = terminal_id
        self.currency = currency
        self.token = secrets.token_urlsafe(24)  # per run: a page of this run, not another site
        self.parts: DemoParts | None = None
        self.current: CheckoutRun | None = None
        self._frame_no = 0
        self._shown: Shown | None = None
        self._png: tuple[int, bytes] | None = None
        self._checkout_version = 0
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._orders = itertools.count(1)
        display.add_listener(self._heard)

    # Wiring.

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(own_host_only)
        app.router.add_get("/demo", self.mirror_page)
        app.router.add_get("/demo/display.png", self.display_png)
        app.router.add_get("/demo/stream", self.stream, allow_head=False)
        app.router.add_post("/demo/checkouts", self.create_checkout)
        # aiohttp waits for open requests after on_shutdown: the streams must
        # end first, or a watching browser would hold the demo's exit.
        app.on_shutdown.append(self._on_shutdown)

    def ready(self, parts: DemoParts) -> None:
        self.parts = parts

    async def close(self) -> None:
        """Stops a running checkout (the bridge's flow cancels it at the PSP
        and clears the terminal) and ends the streams. Call it while the PSP
        and the terminal still run."""
        run = self.current
        if run is not None and run.task is not None and not run.task.done():
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
        self._closing.set()
        self._notify()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing.set()
        self._notify()

    # Frames, from the daemon's worker thread to the loop.

    def _heard(self, shown: Shown) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the demo has ended
            self._loop.call_soon_threadsafe(self._new_frame, shown)

    def _new_frame(self, shown: Shown) -> None:
        self._frame_no += 1
        self._shown = shown
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def frame_info(self) -> dict[str, Any] | None:
        shown = self._shown
        if shown is None:
            return None
        content = shown.frame.content
        return {
            "n": self._frame_no,
            "kind": content.kind,
            # The link to pay: the URL, also out of an EMV payload on screen.
            "qr_url": _pay_link(content.qr_url),
            "text": describe(content),
        }

    def sentence(self, info: dict[str, Any]) -> str:
        return f"Terminal {self.terminal_id} shows {info['text']}"

    # Checkouts.

    def track(self, order: CheckoutOrder) -> CheckoutRun:
        """Makes ``order`` the lane's current checkout, as the page shows it;
        the caller runs it and reports its steps and outcome to the run."""
        run = CheckoutRun(order, self._checkout_changed)
        self.current = run
        self._checkout_changed()
        return run

    def _checkout_changed(self) -> None:
        self._checkout_version += 1
        self._notify()

    def busy(self) -> str | None:
        """Why a new checkout cannot start now, or None."""
        if self.current is not None and self.current.running:
            return f"checkout {self.current.order.order_id} is still pending on {self.terminal_id}"
        if self._shown is not None and self._shown.kind == "qr":
            # Started elsewhere (the cashier-bridge CLI): one at a time on a lane.
            return f"{self.terminal_id} is showing a QR code still to be paid"
        return None

    def start(self, parts: DemoParts, amount: int) -> CheckoutRun:
        order = CheckoutOrder(
            order_id=f"WEB-{int(time.time())}-{next(self._orders)}",
            amount=amount,
            currency=self.currency,
            terminal_id=self.terminal_id,
        )
        run = self.track(order)
        run.task = asyncio.create_task(self._run(parts.bridge, run), name="demo-web-checkout")
        return run

    async def _run(self, bridge: BridgeConfig, run: CheckoutRun) -> None:
        try:
            result = await run_checkout(bridge, run.order, run.step)
        except asyncio.CancelledError:
            run.finish("failed", "the demo stopped")
            raise
        except BridgeError as exc:
            run.finish("failed", exc.message)
        except Exception:
            log.exception("the demo's checkout %s failed", run.order.order_id)
            run.finish("failed", "an internal error; the demo's log has it")
        else:
            run.finish(result.outcome, result.outcome)

    # Handlers.

    def _parts(self) -> DemoParts:
        if self.parts is None:
            raise APIError("starting", "the demo is still starting; try again", status=503)
        return self.parts

    async def mirror_page(self, request: web.Request) -> web.Response:
        parts = self._parts()
        # Not no-referrer (the PSP's default): under it a browser sends
        # "Origin: null" with the form's post, which is then refused.
        headers = {**_NO_STORE, "Referrer-Policy": "same-origin"}
        return web.Response(
            text=render_page(self, parts), content_type="text/html", headers=headers
        )

    async def display_png(self, request: web.Request) -> web.Response:
        number = request.query.get("n")
        if number is not None and not number.isdigit():
            raise APIError("invalid_frame", "n must be a frame number", status=400)
        shown, frame_no = self._shown, self._frame_no
        if shown is None or shown.frame.image is None:
            raise APIError("no_frame", "the terminal has not drawn a frame yet", status=503)
        if self._png is None or self._png[0] != frame_no:
            self._png = (frame_no, frame_png(shown.frame.image))
        # Always the latest frame: ``n`` only makes each frame's URL new.
        return web.Response(
            body=self._png[1],
            content_type="image/png",
            headers={**_NO_STORE, "X-Frame-Number": str(frame_no)},
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if self._closing.is_set():
            raise APIError("stopping", "the demo is stopping", status=503)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the browser went away
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            await self._send_changes(response)
            await response.write_eof()
        return response

    async def _send_changes(self, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        sent_frame, sent_checkout = -1, -1
        sent_screen: tuple[Any, ...] | None = None
        sent_at = float("-inf")
        while not self._closing.is_set():
            changed = self._changed  # taken before looking, so no change is missed
            if self._checkout_version != sent_checkout:
                sent_checkout = self._checkout_version
                run = None if self.current is None else self.current.public()
                await response.write(b"event: checkout\ndata: " + orjson.dumps(run) + b"\n\n")
                continue
            info = self.frame_info()
            if info is not None and info["n"] != sent_frame:
                screen = (info["kind"], info["qr_url"], info["text"])
                wait = sent_at + MIN_GAP - loop.time()
                if screen == sent_screen and wait > 0:
                    # Woken early by the next frame: a new screen goes out at once.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), wait)
                    continue
                await response.write(
                    f"id: {info['n']}\n".encode() + b"data: " + orjson.dumps(info) + b"\n\n"
                )
                sent_frame, sent_screen, sent_at = info["n"], screen, loop.time()
                continue
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")

    async def create_checkout(self, request: web.Request) -> web.StreamResponse:
        form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
        try:
            return await self._create_checkout(request, form)
        except APIError as exc:
            if not form:
                raise
            # A browser without scripts posted the form: it gets a page, not JSON.
            return web.Response(
                status=exc.status,
                text=render_refusal(exc.message),
                content_type="text/html",
                headers=_NO_STORE,
            )

    async def _create_checkout(self, request: web.Request, form: bool) -> web.StreamResponse:
        parts = self._parts()
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
            raise APIError("forbidden", "the demo takes checkouts from its own page", status=403)
        body = await _read_body(request, form)
        token = request.headers.get(TOKEN_HEADER, body.get("token"))
        if not isinstance(token, str) or not secrets.compare_digest(
            token.encode(), self.token.encode()
        ):
            raise APIError(
                "forbidden", "the demo takes checkouts from its own page (demo token)", status=403
            )
        amount = _amount(body.get("amount"), self.currency, request.app[SETTINGS].max_amount)
        reason = self.busy()
        if reason is not None:
            raise APIError("busy", f"one checkout at a time: {reason}", status=409)
        run = self.start(parts, amount)
        if form:
            raise web.HTTPSeeOther(location="../demo")
        return web.json_response(run.public(), status=202, headers=_NO_STORE)


async def _read_body(request: web.Request, form: bool) -> dict[str, Any]:
    if form:
        return dict(await read_form(request))
    if request.content_type != "application/json":
        raise APIError(
            "invalid_body", 'send JSON ({"amount": "4.20"}) or the page\'s form', status=400
        )
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        raise APIError("invalid_json", "the body is not JSON", status=400) from None
    if not isinstance(body, dict):
        raise APIError("invalid_json", "the body must be a JSON object", status=400)
    return body


def _amount(value: Any, currency: str, maximum: int) -> int:
    if value is None or value == "":
        raise APIError("invalid_amount", f"give an amount in {currency}, like 4.20", status=400)
    if not isinstance(value, str):
        raise APIError(
            "invalid_amount", f'the amount must be a string in {currency}, like "4.20"', status=400
        )
    try:
        amount = parse_major(value, currency)
        check_minor_amount(amount, maximum=maximum)
    except InvalidValue as exc:
        if exc.code == "amount_too_large":
            largest = format_display(maximum, currency)
            raise APIError(exc.code, f"the amount must be at most {largest}", status=400) from None
        raise APIError(exc.code, exc.message, status=400) from None
    return amount


# The page. Its URLs are relative (the PSP may sit under a path prefix): the
# page is /demo, so its own resources are demo/..., and the assets static/...
ROOT = ""


def render_page(mirror: DisplayMirror, parts: DemoParts) -> str:
    info = mirror.frame_info()
    geometry = mirror.display.geometry
    width, height = geometry.width * SCALE, geometry.height * SCALE
    tid = escape(mirror.terminal_id)
    run = None if mirror.current is None else mirror.current.public()
    if info is None:
        screen = f'<img id="screen" class="screen" width="{width}" height="{height}" hidden alt="">'
        status = f"Terminal {tid} has not drawn a frame yet."
        qr_url = None
    else:
        sentence = escape(mirror.sentence(info))
        screen = (
            f'<img id="screen" class="screen" src="demo/display.png?n={info["n"]}" '
            f'width="{width}" height="{height}" alt="{sentence}" '
            f'data-n="{info["n"]}" data-kind="{escape(str(info["kind"]))}">'
        )
        status = sentence
        qr_url = info["qr_url"]
    href = f' href="{escape(qr_url)}"' if qr_url else ""
    pay_link = (
        f'<p id="pay-row"{"" if qr_url else " hidden"}><a id="pay-link" class="button primary"'
        f'{href} target="_blank" rel="noopener">Open the payment page'
        '<span class="visually-hidden"> (opens in a new tab)</span></a></p>'
    )
    currency = escape(mirror.currency)
    body = f"""<main class="mirror">
<h1>Terminal {tid}</h1>
<p class="muted">{escape(parts.merchant_name)}: the display of <code>scan2pay demo</code>'s
emulated terminal, mirrored live. Scan its QR with a phone, or pay it in this browser.</p>
<div class="bezel">{screen}</div>
<p id="screen-status" class="status" role="status">{status}</p>
<p id="live" class="muted">Connecting to the demo…</p>
<noscript><p>Without JavaScript the picture does not follow the terminal: reload the
page to see its latest screen.</p></noscript>
{pay_link}
<section class="card" aria-labelledby="new-checkout">
<h2 id="new-checkout">New checkout</h2>
<form id="checkout-form" method="post" action="demo/checkouts">
<input type="hidden" name="token" value="{escape(mirror.token)}">
<label for="amount">Amount in {currency}</label>
<input id="amount" name="amount" type="text" inputmode="decimal" autocomplete="off"
 value="{DEFAULT_AMOUNT}" required aria-describedby="amount-hint">
<p id="amount-hint" class="muted">Like {DEFAULT_AMOUNT}. The checkout goes to terminal {tid}
through the cashier bridge, as a till would send it.</p>
<div class="actions"><button type="submit" class="primary">Start the checkout</button></div>
</form>
<p id="checkout-error" class="message" role="alert"></p>
<p id="checkout-state" aria-live="polite">{escape(run["text"]) if run else "No checkout yet."}</p>
</section>
<section class="card" aria-labelledby="demo-wallet">
<h2 id="demo-wallet">The demo wallet</h2>
<p>{escape(parts.wallet_name)}'s wallet pays in {currency}. Put it in this browser and the
payment page pays at once, without asking for its token.</p>
<button id="use-wallet" type="button">Use the demo wallet in this browser</button>
<p id="wallet-message" class="message" role="status"></p>
<p class="muted">The demo shows its wallet's token only to its own pages, on this PSP's
address; a real wallet keeps its token on the phone.</p>
</section>
</main>"""
    return page(
        title=f"Terminal {mirror.terminal_id}: scan2pay demo",
        body=body,
        root=ROOT,
        scripts=("mirror.js",),
        data={
            "terminal_id": mirror.terminal_id,
            "currency": mirror.currency,
            "frame": info,
            "checkout": run,
            "demo_token": mirror.token,
            "wallet_token": parts.wallet_token,
            "wallet_name": parts.wallet_name,
        },
    )


def render_refusal(message: str) -> str:
    body = f"""<main>
<h1>Checkout not started</h1>
<p class="message error" role="alert">{escape(message[:1].upper() + message[1:])}.</p>
<p><a href="../demo">Back to the terminal's display</a></p>
</main>"""
    return page(title="Checkout not started: scan2pay demo", body=body, root="../")
