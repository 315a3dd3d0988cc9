"""``scan2pay demo``: the whole scan-to-pay flow in one process, on embedded
defaults: a SQLite file in a temporary folder, an MQTT broker inside the
process (or the one ``--mqtt`` names), the PSP, the terminal daemon drawing
on the console, a demo merchant, terminal and wallet.

The checkout runs through the cashier bridge's own code path; the wallet
reads the QR off the terminal's rendered frame and pays; the terminal shows
"Paid" and the bridge reports it. A timeline gives the time of each hop.

With ``--qr-format emv`` the demo merchant's QR codes are EMVCo payloads
around the payment URL (docs/emv.md), set through ``PATCH /v1/merchant`` as
a merchant would; the terminal, on a 128x128 display that can show them,
draws the payload, and the wallet and the mirror take the URL out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from cashier_bridge.flow import run_checkout
from cashier_bridge.model import BridgeConfig, CheckoutOrder, Step
from hardware.base import Geometry
from psp_server.api.appkeys import STORAGE
from psp_server.runtime.config import Settings
from psp_server.runtime.server import RunningServer, start_server
from scan2pay_common import logformat
from scan2pay_common.emv import EmvError
from scan2pay_common.money import format_display
from scan2pay_common.mqtt_url import MqttTarget
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from terminal.qr_fit import emv_fit, longest_payload

from . import wallet
from .demo_display import DemoDisplay
from .demo_web import CheckoutRun, DemoParts, DisplayMirror
from .embedded_broker import EmbeddedBroker

TERMINAL_ID = "lane-1"
MERCHANT_NAME = "Demo Café"
GEOMETRY = Geometry(128, 64, "1")
# An EMV payload needs a symbol twice a URL's size at 2 pixels a module
# (docs/emv.md, "The terminal"): the smallest supported panel that shows one.
EMV_GEOMETRY = Geometry(128, 128, "1")
# The demo merchant's EMV settings: a café (ISO 18245 5814) in Berlin.
EMV_SETTINGS = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}


@dataclass
class DemoOptions:
    mqtt: MqttTarget | None = None
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    amount: int = 1234
    currency: str = "EUR"
    serve: bool = False
    draw: bool = True  # the terminal's screens on the console
    qr_format: str = "url"  # or "emv": the demo merchant's QR codes are EMV payloads
    out: TextIO = field(default_factory=lambda: sys.stdout)


class Timeline:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}

    def say(self, who: str, text: str, *, at: float | None = None, mark: str | None = None) -> None:
        at = time.monotonic() if at is None else at
        if mark is not None:
            self.marks.setdefault(mark, at)
        print(f"[{(at - self.start) * 1000:8.1f} ms] {who:<8} {text}", file=self.out, flush=True)

    def between(self, first: str, last: str) -> float | None:
        if first in self.marks and last in self.marks:
            return (self.marks[last] - self.marks[first]) * 1000
        return None


async def run_demo(options: DemoOptions) -> int:
    logformat.configure(logging.WARNING, "%(levelname)s %(name)s %(message)s")
    if options.mqtt is None:
        # The embedded broker speaks MQTT 3.1.1 only; the relay's warning
        # that it falls back from 5 is for operators, not for the demo.
        logging.getLogger("psp_server.outbox.relay").setLevel(logging.ERROR)
    out = options.out
    geometry = EMV_GEOMETRY if options.qr_format == "emv" else GEOMETRY
    display = DemoDisplay(out if options.draw else None, geometry)
    # Its pages are on the PSP's own origin, beside the QR page (demo_web.py).
    mirror = DisplayMirror(display, terminal_id=TERMINAL_ID, currency=options.currency)
    with tempfile.TemporaryDirectory(prefix="scan2pay-demo-") as folder:
        async with _broker(options) as (target, embedded):
            psp = await start_server(
                Settings(
                    host=options.host,
                    port=options.port,
                    db=str(Path(folder) / "psp.db"),
                    mqtt=target,
                    public_url=options.public_url,
                    sweep_interval=0.5,
                ),
                routes=mirror.add_routes,
            )
            try:
                return await _with_psp(options, psp, target, embedded, display, mirror, out)
            finally:
                await psp.stop()


@contextlib.asynccontextmanager
async def _broker(options: DemoOptions) -> AsyncIterator[tuple[MqttTarget, bool]]:
    if options.mqtt is not None:
        yield options.mqtt, False
        return
    async with EmbeddedBroker() as broker:
        yield broker.target, True


async def _with_psp(
    options: DemoOptions,
    psp: RunningServer,
    target: MqttTarget,
    embedded: bool,
    display: DemoDisplay,
    mirror: DisplayMirror,
    out: TextIO,
) -> int:
    storage = psp.app[STORAGE]
    geometry = display.geometry
    if options.qr_format == "emv":
        problem = _emv_problem(psp.settings.public_url, geometry)
        if problem is not None:
            print(f"scan2pay demo: {problem}", file=sys.stderr, flush=True)
            return 2
    merchant, api_key = await storage.create_merchant(MERCHANT_NAME)
    if options.qr_format == "emv":
        await _use_emv(psp.url, api_key)
    ann, token = await storage.create_wallet("Ann", options.currency, options.amount * 4)
    print(
        f"scan2pay demo\n"
        f"  PSP       {psp.url} (SQLite in a temporary folder)\n"
        f"  broker    {target}{' (embedded)' if embedded else ''}\n"
        f"  merchant  {merchant.name} ({merchant.id})\n"
        f"  terminal  {TERMINAL_ID}, {geometry.width}x{geometry.height} display drawn below\n"
        f"  QR codes  {_qr_words(options.qr_format)}\n"
        f"  wallet    {ann.name} with {format_display(ann.balance, ann.currency)}\n",
        file=out,
        flush=True,
    )
    bridge = BridgeConfig(
        psp_url=psp.url, merchant_key=api_key, mqtt=target, terminal_id=TERMINAL_ID
    )
    mirror.ready(DemoParts(bridge, token, ann.name, merchant.name))
    daemon = TerminalDaemon(
        TerminalConfig(
            mqtt=target,
            merchant_id=merchant.id,
            terminal_id=TERMINAL_ID,
            name=MERCHANT_NAME,
            psp_url=psp.settings.public_url,
            idle_after=3600,
            # As in production: the terminal trusts only what the PSP signed.
            psp_public_keys=(storage.signing_key.public,),
            qr_format=options.qr_format,
        ),
        display,
    )
    stop = asyncio.Event()
    terminal = asyncio.create_task(daemon.run(stop), name="terminal")
    try:
        await _wait_for(lambda: daemon.state is not None, "the terminal's first frame")
        order = CheckoutOrder(
            order_id=f"DEMO-{int(time.time())}",
            amount=options.amount,
            currency=options.currency,
            terminal_id=TERMINAL_ID,
        )
        code = await _one_checkout(bridge, order, display, mirror.track(order), psp.url, token, out)
        if code == 0 and options.serve:
            await _serve_until_stopped(psp, target, merchant.id, api_key, token, out)
        return code
    finally:
        # Its checkout, if one runs, is cancelled through the PSP and the
        # terminal: before they stop.
        await mirror.close()
        stop.set()
        await asyncio.wait_for(terminal, 10)


def _qr_words(qr_format: str) -> str:
    if qr_format == "emv":
        settings = EMV_SETTINGS
        return (
            f"EMV payloads (MCC {settings['mcc']}, {settings['country']}, {settings['city']})"
            " around the payment URL"
        )
    return "the payment URL"


def _emv_problem(public_url: str | None, geometry: Geometry) -> str | None:
    """Why the demo's display cannot show the longest EMV payload it may
    get with this public URL (as a terminal checks at start), or None."""
    try:
        payload = longest_payload(public_url, TERMINAL_ID)
    except EmvError as exc:
        return f"--qr-format emv: {exc.message} (--public-url)"
    return emv_fit(geometry.width, geometry.height, payload).problem()


async def _use_emv(psp_url: str, api_key: str) -> None:
    """Makes the demo merchant's QR codes EMV payloads, as a merchant does:
    ``PATCH /v1/merchant`` with its own key."""
    async with (
        aiohttp.ClientSession() as http,
        http.patch(
            f"{psp_url}/v1/merchant",
            json=EMV_SETTINGS,
            headers={"Authorization": f"Bearer {api_key}"},
        ) as response,
    ):
        if response.status != 200:
            raise RuntimeError(
                f"the PSP refused the demo merchant's EMV settings: {await response.text()}"
            )


async def _one_checkout(
    bridge: BridgeConfig,
    order: CheckoutOrder,
    display: DemoDisplay,
    run: CheckoutRun,
    psp_url: str,
    token: str,
    out: TextIO,
) -> int:
    timeline = Timeline(out)
    amount = format_display(order.amount, order.currency)
    timeline.say(
        "cashier",
        f"checkout {order.order_id} for {amount} at {order.terminal_id}",
        mark="requested",
    )

    def on_step(step: Step) -> None:
        timeline.say("bridge", step.message, at=step.at, mark=f"bridge:{step.name}")
        run.step(step)

    async def scan_and_pay() -> None:
        shown = await _wait_for(lambda: display.first_shown("qr", timeline.start), "the QR")
        timeline.say("terminal", "QR on the display", at=shown.at, mark="qr_on_screen")
        image = shown.frame.image
        if image is None:  # the demo's display draws every frame
            raise RuntimeError("the terminal's QR frame has no image to read")
        scanned = wallet.read_qr(image)  # a URL, or an EMV merchant's payload
        timeline.say("wallet", f"read the QR off the terminal's frame: {scanned}", mark="scanned")
        async with aiohttp.ClientSession() as http:
            timeline.say("wallet", "paying", mark="pay_sent")
            paid = await wallet.pay(http, psp_url, scanned, token)
        info = paid.info
        timeline.say(
            "wallet",
            f"{info['merchant']['name']} asked {format_display(info['amount'], info['currency'])};"
            f" paid, {paid.payment['id']}",
            mark="pay_answered",
        )
        on_paid = await _wait_for(lambda: display.first_shown("paid", timeline.start), "Paid")
        timeline.say("terminal", "shows Paid", at=on_paid.at, mark="paid_on_screen")

    paying = asyncio.create_task(scan_and_pay())
    try:
        result = await run_checkout(bridge, order, on_step)
        await asyncio.wait_for(paying, 10)
    except BaseException:
        paying.cancel()
        run.finish("failed", "the demo's own checkout did not finish")
        raise
    run.finish(result.outcome, result.outcome)
    timeline.say("cashier", f"outcome: {result.outcome} (confirmed by the PSP)", mark="outcome")
    _print_hops(timeline, out)
    return 0 if result.outcome == "paid" else 1


def _print_hops(timeline: Timeline, out: TextIO) -> None:
    hops = [
        ("checkout -> QR on the terminal's display", "requested", "qr_on_screen"),
        ("wallet pays -> PSP answers", "pay_sent", "pay_answered"),
        ("PSP answers -> terminal shows Paid", "pay_answered", "paid_on_screen"),
        ("wallet pays -> cashier hears the outcome", "pay_sent", "outcome"),
        ("whole flow, checkout -> outcome", "requested", "outcome"),
    ]
    print("\nlatency of each hop:", file=out)
    for label, first, last in hops:
        ms = timeline.between(first, last)
        if ms is not None:
            print(f"  {label:<44} {ms:8.1f} ms", file=out)
    print(file=out, flush=True)


async def _serve_until_stopped(
    psp: RunningServer, target: MqttTarget, merchant_id: str, api_key: str, token: str, out: TextIO
) -> None:
    print(
        f"Watch and pay in a browser: {mirror_url(psp)}\n"
        "Everything keeps running. Try it by hand (Ctrl-C to stop):\n"
        f"  export SCAN2PAY_PSP_URL={psp.url} SCAN2PAY_MQTT={target}\n"
        f"  export SCAN2PAY_MERCHANT_KEY={api_key}\n"
        "  cashier-bridge checkout --order A-1 --amount 4.20 --currency EUR"
        f" --terminal {TERMINAL_ID}\n"
        f"  # then pay the code from the QR URL it prints, as a wallet:\n"
        f"  curl -X POST {psp.url}/v1/payments -H 'Authorization: Bearer {token}' \\\n"
        f"       -H 'Content-Type: application/json' -d '{{\"code\": \"<CODE>\"}}'\n"
        f"  mosquitto_sub -h {target.host} -p {target.port} -t 'scan2pay/v1/m/{merchant_id}/#' -v\n"
        f"  Open the QR URL in a browser to see the checkout's page; to pay from a phone on\n"
        f"  the same network, run the demo with --host <this machine's LAN address>.\n",
        file=out,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def mirror_url(psp: RunningServer) -> str:
    """The mirror at the PSP's public address, which is the QR page's origin
    too: the wallet token the mirror stores is then the QR page's."""
    public = urlsplit(psp.settings.public_url or psp.url)
    return urlunsplit(
        (public.scheme.lower(), public.netloc.lower(), f"{public.path.rstrip('/')}/demo", "", "")
    )


T = TypeVar("T")
WAIT_SECONDS = 15.0


async def _wait_for(check: Callable[[], T | None], what: str) -> T:
    """Polls ``check`` until it gives a value; the demo's parts are in this
    process, so a short poll is simpler than wiring callbacks through them."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.002)
    raise TimeoutError(f"the demo waited {WAIT_SECONDS:.0f} s for {what}")
