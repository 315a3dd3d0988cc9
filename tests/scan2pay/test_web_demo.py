"""The demo's display mirror (``/demo``), on ``scan2pay demo --serve`` run as
a separate process, as a user runs it: watched and paid from headless
Chromium, and its endpoints' refusals over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import Error as PlaywrightError

from psp_server.core.qr import checkout_id_of_reference
from scan2pay import wallet
from scan2pay_common import emv
from tests.support.browser import DESKTOP, BrowserSession, assert_accessible
from tests.support.proxy import CuttableProxy
from tests.support.qr_decode import qr_codes

BIN = Path(sys.executable).parent
TOKEN_KEY = "scan2pay.wallet_token"  # noqa: S105 - the browser storage key's name, not a token
SCALE = 4
FRAME = (128, 64)  # the demo terminal's display


class DemoProcess:
    """``scan2pay demo --serve --no-draw`` on a free port, its output read
    (and kept) by a thread so that the pipe never fills."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "scan2pay"), "demo", "--serve", "--no-draw", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        started = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                if "Everything keeps running" in line:
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(30) or self.process.poll() is not None:
            self.process.kill()
            raise AssertionError("the demo did not start:\n" + "".join(self.lines))
        self.psp_url = self._printed(r"^\s+PSP\s+(\S+)")
        self.mirror_url = self._printed(r"^Watch and pay in a browser: (\S+)$")
        self.merchant_key = self._printed(r"SCAN2PAY_MERCHANT_KEY=(\S+)")

    def _printed(self, pattern: str) -> str:
        for line in self.lines:
            found = re.search(pattern, line.rstrip("\n"))
            if found:
                return found.group(1)
        raise AssertionError(f"the demo printed no {pattern!r}:\n" + "".join(self.lines))

    def interrupt(self) -> tuple[int | None, float]:
        """Ctrl-C: the exit code and how long the demo took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code: int | None = self.process.wait(10)
        except subprocess.TimeoutExpired:
            code = None
            self.process.kill()
            self.process.wait()
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _assert_stops_promptly(demo: DemoProcess) -> None:
    code, seconds = demo.interrupt()
    output = "".join(demo.lines)
    assert code == 0, output
    assert seconds < 5, f"the demo took {seconds:.1f} s to stop on Ctrl-C\n{output}"


def _decode(png: bytes) -> list[str]:
    return [result.text for result in qr_codes(Image.open(io.BytesIO(png)))]


async def _picture_of(screen: Any) -> bytes:
    """A screenshot of the mirrored display. The page swaps in a new image
    element with each frame (the countdown redraws every second), and one
    swapped during the shot detaches it; the next try takes the new one."""
    for _ in range(4):
        try:
            png: bytes = await screen.screenshot()
            return png
        except PlaywrightError as exc:
            if "not attached" not in str(exc):
                raise
    return bytes(await screen.screenshot())


# In the browser.


async def test_watch_the_demo_and_pay_its_qr_from_a_browser(browser: BrowserSession) -> None:
    demo = await asyncio.to_thread(DemoProcess)
    try:
        assert demo.mirror_url == f"{demo.psp_url}/demo"
        page = await browser.page(viewport=DESKTOP)
        await page.goto(demo.mirror_url)
        data = json.loads(await page.locator("#page-data").text_content())
        screen = page.locator("#screen")
        status = page.locator("#screen-status")
        # The demo's own first checkout was paid before the page opened.
        assert await screen.get_attribute("data-kind") == "paid"
        assert await screen.get_attribute("alt") == "Terminal lane-1 shows Paid, €12.34"
        assert await status.inner_text() == "Terminal lane-1 shows Paid, €12.34"
        assert re.fullmatch(
            r"Checkout DEMO-\d+ for €12\.34: paid\.",
            await page.locator("#checkout-state").inner_text(),
        )
        await page.locator("#live", has_text="Live").wait_for()
        # A marker that a reload would lose: the page must follow without one.
        await page.evaluate("window.sameDocument = true")

        await page.get_by_role("button", name="Use the demo wallet in this browser").click()
        assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") == data["wallet_token"]
        await page.get_by_role("status").filter(has_text="now pays with Ann's").wait_for()

        amount = page.get_by_label("Amount in EUR")
        assert await amount.input_value() == "4.20"
        await page.get_by_role("button", name="Start the checkout").click()
        await page.locator("#screen[data-kind=qr]").wait_for()
        assert await status.inner_text() == "Terminal lane-1 shows a QR code to pay €4.20"
        assert await screen.get_attribute("alt") == "Terminal lane-1 shows a QR code to pay €4.20"
        # The QR as the browser drew it, read as a phone's camera would.
        assert await screen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
            FRAME[0] * SCALE,
            FRAME[1] * SCALE,
        ]
        link = page.get_by_role("link", name="Open the payment page")
        qr_url = await link.get_attribute("href")
        assert qr_url is not None
        assert qr_url.startswith(demo.psp_url.upper() + "/Q/")
        assert _decode(await _picture_of(screen)) == [qr_url]
        await assert_accessible(page)

        async with page.context.expect_page() as opened:
            await link.click()
        pay = browser.adopt(await opened.value)
        await pay.get_by_role("button", name="Pay with the demo wallet").click()
        await pay.get_by_role("region", name="Receipt").wait_for()
        # The token came from the mirror: the wallet did not ask for it.
        assert not await pay.get_by_label("Demo wallet token").is_visible()
        assert await pay.locator("#receipt-amount").inner_text() == "€4.20"

        # The mirror, left open, follows the terminal to Paid by itself.
        await page.locator("#screen[data-kind=paid]").wait_for()
        assert await status.inner_text() == "Terminal lane-1 shows Paid, €4.20"
        await page.locator("#checkout-state", has_text=re.compile(r"€4\.20: paid\.$")).wait_for()
        assert not await page.get_by_role("link", name="Open the payment page").count()
        assert await page.evaluate("window.sameDocument") is True

        # A stream that drops (here, cut at a proxy that then refuses for a
        # moment): the page says so, reconnects, and follows the terminal again.
        async with CuttableProxy(demo.psp_url) as proxy:
            watcher = await browser.page()  # a phone's screen
            await watcher.goto(f"{proxy.url}/demo")
            live = watcher.locator("#live")
            await live.filter(has_text="Live").wait_for()
            await watcher.evaluate("window.sameDocument = true")
            proxy.cut(refuse=True)
            await live.filter(has_text="reconnecting").wait_for()
            proxy.refusing = False
            await live.filter(has_text="Live").wait_for(timeout=20_000)
            # This checkout from a browser without scripts: the form posts itself.
            plain = await browser.page(viewport=DESKTOP, java_script_enabled=False)
            await plain.goto(demo.mirror_url)
            await plain.get_by_label("Amount in EUR").fill("3.10")
            await plain.get_by_role("button", name="Start the checkout").click()
            await plain.wait_for_url(demo.mirror_url)
            assert "for €3.10" in await plain.locator("#checkout-state").inner_text()
            await watcher.locator("#screen[data-kind=qr]").wait_for()
            assert await watcher.evaluate("window.sameDocument") is True
            assert await watcher.locator("#screen-status").inner_text() == (
                "Terminal lane-1 shows a QR code to pay €3.10"
            )
            # Scaled down to the phone's width, the QR still reads.
            watcher_link = watcher.get_by_role("link", name="Open the payment page")
            link_url = await watcher_link.get_attribute("href")
            assert _decode(await _picture_of(watcher.locator("#screen"))) == [link_url]
            await assert_accessible(watcher)
    except BaseException:
        print("the demo's output:\n" + "".join(demo.lines))  # shown with the failure
        raise
    finally:
        # With the page's stream still open, and a checkout pending.
        await asyncio.to_thread(_assert_stops_promptly, demo)
        demo.kill()


# Over HTTP, on one demo for the module: each test leaves no checkout pending.


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProcess]:
    process = DemoProcess()
    try:
        yield process
        _assert_stops_promptly(process)
    finally:
        process.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def _page_data(http: aiohttp.ClientSession, demo: DemoProcess) -> dict[str, Any]:
    async with http.get(demo.mirror_url) as response:
        assert response.status == 200
        html = await response.text()
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html)
    assert found, html
    data: dict[str, Any] = json.loads(found.group(1))
    return data


async def _post(
    http: aiohttp.ClientSession,
    demo: DemoProcess,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.post(
        f"{demo.psp_url}/demo/checkouts",
        json=json_body,
        data=form,
        headers=headers or {},
        allow_redirects=False,
    ) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_a_bad_amount_is_refused_with_a_reason_and_starts_nothing(
    demo: DemoProcess, http: aiohttp.ClientSession
) -> None:
    before = await _page_data(http, demo)
    own = {"X-Demo-Token": before["demo_token"], "Origin": demo.psp_url}
    for amount, reason in [
        ("abc", "'abc' is not an amount like 12.34"),
        ("4.205", "EUR has 2 decimal places"),
        ("0", "greater than zero"),
        ("-1", "not an amount"),
        ("1000000.01", "at most €1,000,000.00"),
        ("", "give an amount in EUR"),
        (4.2, "must be a string in EUR"),
        (None, "give an amount in EUR"),
    ]:
        status, body = await _post(http, demo, json_body={"amount": amount}, headers=own)
        assert status == 400, (amount, body)
        assert reason in body["error"]["message"], (amount, body)
    status, body = await _post(http, demo, json_body=["4.20"], headers=own)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    # The form a browser without scripts posts gets its refusal as a page.
    status, html = await _post(
        http, demo, form={"amount": "4.2x", "token": before["demo_token"]}, headers=own
    )
    assert status == 400
    assert "is not an amount like 12.34" in html
    assert "<h1>" in html
    after = await _page_data(http, demo)
    assert after["checkout"] == before["checkout"]
    assert after["frame"]["kind"] == before["frame"]["kind"]


async def test_requests_not_from_the_demo_page_are_refused(
    demo: DemoProcess, http: aiohttp.ClientSession
) -> None:
    before = await _page_data(http, demo)
    token = before["demo_token"]
    for headers, form in [
        ({}, None),  # no token
        ({"X-Demo-Token": "not-the-token"}, None),
        ({"X-Demo-Token": token, "Origin": "http://evil.example"}, None),
        ({"X-Demo-Token": token, "Origin": "null"}, None),
        ({"Origin": "http://evil.example"}, {"amount": "4.20", "token": token}),
        ({"Origin": demo.psp_url}, {"amount": "4.20", "token": "guessed"}),
    ]:
        if form is None:
            status, body = await _post(http, demo, json_body={"amount": "4.20"}, headers=headers)
        else:
            status, body = await _post(http, demo, form=form, headers=headers)
        assert status == 403, (headers, form, body)
        assert "from its own page" in str(body)
    after = await _page_data(http, demo)
    assert after["checkout"] == before["checkout"]
    assert after["frame"]["kind"] == before["frame"]["kind"]


async def test_a_page_that_names_another_host_is_refused(
    demo: DemoProcess, http: aiohttp.ClientSession
) -> None:
    """DNS rebinding: a site whose name resolves to 127.0.0.1 asks for the
    demo under its own name; it must not read the demo's tokens."""
    port = urlsplit(demo.psp_url).port
    for path in ("/demo", "/demo/stream", "/demo/display.png"):
        async with http.get(
            f"{demo.psp_url}{path}", headers={"Host": f"rebound.example:{port}"}
        ) as response:
            body = await response.text()
            assert response.status == 403, (path, body)
            assert "demo_token" not in body
    before = await _page_data(http, demo)
    status, _ = await _post(
        http,
        demo,
        json_body={"amount": "4.20"},
        headers={
            "Host": f"rebound.example:{port}",
            "Origin": f"http://rebound.example:{port}",
            "X-Demo-Token": before["demo_token"],
        },
    )
    assert status == 403
    for name in (f"localhost:{port}", f"127.0.0.1:{port}"):
        async with http.get(f"{demo.psp_url}/demo", headers={"Host": name}) as response:
            assert response.status == 200, name
    assert (await _page_data(http, demo))["checkout"] == before["checkout"]


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """The server-sent events of a stream, as (event type, data)."""
    kind = "message"
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())


async def test_one_checkout_at_a_time_and_the_stream_follows_it_to_paid(
    demo: DemoProcess, http: aiohttp.ClientSession
) -> None:
    data = await _page_data(http, demo)
    own = {"Origin": demo.psp_url}
    async with http.get(f"{demo.psp_url}/demo/stream") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = _events(stream)
        # A new stream starts with where things are.
        assert (await anext(events))[0] == "checkout"
        kind, frame = await anext(events)
        assert kind == "message"
        assert set(frame) == {"n", "kind", "qr_url", "text"}

        # The page's form, as posted without scripts: the token is a field.
        status, _ = await _post(
            http, demo, form={"amount": "2.50", "token": data["demo_token"]}, headers=own
        )
        assert status == 303
        status, body = await _post(
            http,
            demo,
            json_body={"amount": "1.00"},
            headers={**own, "X-Demo-Token": data["demo_token"]},
        )
        assert status == 409, body
        assert "one checkout at a time" in body["error"]["message"]

        async with asyncio.timeout(15):
            async for kind, frame in events:
                if kind == "message" and frame["kind"] == "qr":
                    break
        assert frame["text"] == "a QR code to pay €2.50"
        qr_url = frame["qr_url"]
        # The picture says what the message says.
        async with http.get(f"{demo.psp_url}/demo/display.png", params={"n": frame["n"]}) as png:
            assert _decode(await png.read()) == [qr_url]

        # The demo's own wallet pays it, as the demo's first checkout is paid.
        paid = await wallet.pay(http, demo.psp_url, qr_url, data["wallet_token"])
        assert paid.payment["amount"] == 250
        seen = {"frame": False, "checkout": False}
        async with asyncio.timeout(15):
            async for kind, body in events:
                if kind == "message" and body["kind"] == "paid":
                    assert body["text"] == "Paid, €2.50"
                    seen["frame"] = True
                if kind == "checkout" and body["state"] == "paid":
                    assert body["amount_text"] == "€2.50"
                    seen["checkout"] = True
                if all(seen.values()):
                    break
    assert (await _page_data(http, demo))["checkout"]["state"] == "paid"


async def test_the_display_is_a_png_of_the_frame_scaled_up_crisply(
    demo: DemoProcess, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{demo.psp_url}/demo/display.png", params={"n": "1"}) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert response.headers["Cache-Control"] == "no-store"
        image = Image.open(io.BytesIO(await response.read()))
    assert image.size == (FRAME[0] * SCALE, FRAME[1] * SCALE)
    # Nearest neighbour: each panel pixel is a uniform SCALE x SCALE square.
    small = image.resize(FRAME, Image.Resampling.NEAREST)
    assert small.resize(image.size, Image.Resampling.NEAREST).tobytes() == image.tobytes()
    async with http.get(f"{demo.psp_url}/demo/display.png", params={"n": "x"}) as response:
        assert response.status == 400
        assert "frame number" in (await response.json())["error"]["message"]


# In the process: the stream's pace, with the demo's own display fed from a
# worker thread as the terminal daemon feeds it.


async def test_a_stream_sends_a_burst_of_redraws_as_its_latest_frame() -> None:
    from aiohttp.test_utils import TestServer

    from hardware.base import Content, Frame, Geometry
    from scan2pay.demo_display import DemoDisplay
    from scan2pay.demo_web import DisplayMirror

    display = DemoDisplay(None, Geometry(*FRAME, "1"))
    mirror = DisplayMirror(display, terminal_id="lane-1", currency="EUR")
    app = web.Application()
    mirror.add_routes(app)
    image = Image.new("1", FRAME, 0)
    qr = Content("HTTP://PSP.EXAMPLE/Q/ABC", ("€1.00", "Scan to pay", "4:59"), "qr")
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/demo/stream")) as stream:
            # A task reads the stream, so that a wait that times out loses nothing.
            received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

            async def read() -> None:
                async for event in _events(stream):
                    received.put_nowait(event)

            reader = asyncio.create_task(read())
            assert await asyncio.wait_for(received.get(), 5) == ("checkout", None)

            def burst() -> None:
                for _ in range(20):
                    display.show(Frame(qr, image))

            await asyncio.to_thread(burst)
            await asyncio.sleep(1.0)
            numbers = []
            while not received.empty():
                kind, frame = received.get_nowait()
                assert (kind, frame["text"]) == ("message", "a QR code to pay €1.00")
                numbers.append(frame["n"])
            # The first at once, then the latest after the pause: not twenty.
            assert 1 <= len(numbers) <= 3, numbers
            assert numbers[-1] == 20
            # A redraw just after a frame waits; a new screen behind it does not.
            await asyncio.to_thread(display.show, Frame(qr, image))
            assert (await asyncio.wait_for(received.get(), 5))[1]["n"] == 21

            def redraw_then_paid() -> None:
                display.show(Frame(qr, image))
                display.show(Frame(Content(None, ("Paid",), "paid"), image))

            await asyncio.to_thread(redraw_then_paid)
            kind, frame = await asyncio.wait_for(received.get(), 5)
            assert (kind, frame["kind"], frame["n"]) == ("message", "paid", 23)
            reader.cancel()
        await mirror.close()


# With an EMV merchant: the same flow, its QR codes EMV payloads.


async def test_the_demo_draws_and_pays_emv_payloads_with_qr_format_emv(
    http: aiohttp.ClientSession,
) -> None:
    demo = await asyncio.to_thread(DemoProcess, "--qr-format", "emv")
    try:
        output = "".join(demo.lines)
        assert "128x128 display" in output
        # The demo's own checkout: its wallet read a payload off the frame and paid.
        scanned = demo._printed(r"read the QR off the terminal's frame: (000201.+)$")
        assert emv.parse_payload(scanned).amount == "12.34"
        assert re.search(r"cashier\s+outcome: paid", output), output
        merchant_auth = {"Authorization": f"Bearer {demo.merchant_key}"}
        async with http.get(f"{demo.psp_url}/v1/merchant", headers=merchant_auth) as response:
            settings = await response.json()
        assert settings["qr_format"] == "emv"
        assert (settings["mcc"], settings["country"], settings["city"]) == ("5814", "DE", "Berlin")

        # A checkout from the mirror's form, through the cashier bridge.
        data = await _page_data(http, demo)
        own = {"Origin": demo.psp_url, "X-Demo-Token": data["demo_token"]}
        async with http.get(f"{demo.psp_url}/demo/stream") as stream:
            events = _events(stream)
            status, _ = await _post(http, demo, json_body={"amount": "2.50"}, headers=own)
            assert status == 202
            async with asyncio.timeout(15):
                async for kind, frame in events:
                    if kind == "message" and frame["kind"] == "qr":
                        break
        assert frame["text"] == "a QR code to pay €2.50"
        async with http.get(f"{demo.psp_url}/demo/display.png", params={"n": frame["n"]}) as png:
            picture = await png.read()
        assert Image.open(io.BytesIO(picture)).size == (128 * SCALE, 128 * SCALE)
        # The QR the terminal drew, decoded: a payload that holds, of this checkout.
        [payload] = _decode(picture)
        parsed = emv.parse_payload(payload)
        assert (parsed.dynamic, parsed.amount, parsed.currency) == (True, "2.50", "EUR")
        assert (parsed.merchant_name, parsed.merchant_city) == ("Demo Cafe", "Berlin")
        assert parsed.terminal_label == "lane-1"
        assert parsed.reference is not None
        checkout_id = checkout_id_of_reference(parsed.reference)
        async with http.get(
            f"{demo.psp_url}/v1/checkouts/{checkout_id}", headers=merchant_auth
        ) as response:
            assert response.status == 200
            checkout = await response.json()
        assert parsed.url() == checkout["qr_url"]
        assert payload == checkout["qr_payload"]
        # The mirror's link to pay is the URL out of the payload.
        assert frame["qr_url"] == checkout["qr_url"]

        # The demo wallet pays the payload itself, and the terminal shows Paid.
        paid = await wallet.pay(http, demo.psp_url, payload, data["wallet_token"])
        assert paid.payment["checkout_id"] == checkout_id
        async with http.get(f"{demo.psp_url}/demo/stream") as stream:
            async with asyncio.timeout(15):
                async for kind, body in _events(stream):
                    if kind == "message" and body["kind"] == "paid":
                        assert body["text"] == "Paid, €2.50"
                        break
    except BaseException:
        print("the demo's output:\n" + "".join(demo.lines))
        raise
    finally:
        await asyncio.to_thread(_assert_stops_promptly, demo)
        demo.kill()


def test_qr_format_emv_with_a_public_url_too_long_for_a_payload_stops_with_the_reason() -> None:
    long_url = "HTTPS://PAY-TERMINAL-DEMO-WITH-A-RATHER-LONG-NAME.SHOPS.EXAMPLE.COM"
    command = [str(BIN / "scan2pay"), "demo", "--no-draw", "--qr-format", "emv", "--port", "0"]
    finished = subprocess.run(
        [*command, "--public-url", long_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stdout + finished.stderr
    assert finished.stderr == (
        "scan2pay demo: --qr-format emv: EMV data object 01 would be 102 characters long;"
        " at most 99 fit (--public-url)\n"
    )


async def test_the_emv_demo_is_watched_and_paid_from_a_browser(browser: BrowserSession) -> None:
    demo = await asyncio.to_thread(DemoProcess, "--qr-format", "emv")
    try:
        page = await browser.page(viewport=DESKTOP)
        await page.goto(demo.mirror_url)
        await page.get_by_role("button", name="Use the demo wallet in this browser").click()
        await page.get_by_role("status").filter(has_text="now pays with Ann's").wait_for()
        await page.get_by_label("Amount in EUR").fill("3.75")
        await page.get_by_role("button", name="Start the checkout").click()
        await page.locator("#screen[data-kind=qr]").wait_for()
        screen = page.locator("#screen")
        assert await screen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
            128 * SCALE,
            128 * SCALE,
        ]
        # The picture the browser shows holds the payload; the link, its URL.
        [payload] = _decode(await _picture_of(screen))
        assert emv.parse_payload(payload).amount == "3.75"
        link = page.get_by_role("link", name="Open the payment page")
        assert await link.get_attribute("href") == emv.url_of_payload(payload)
        await assert_accessible(page)
        async with page.context.expect_page() as opened:
            await link.click()
        pay = browser.adopt(await opened.value)
        # The payment page offers the same payload to copy into a banking app.
        assert await pay.get_by_label(re.compile("Payment code to copy")).input_value() == payload
        await pay.get_by_role("button", name="Pay with the demo wallet").click()
        await pay.get_by_role("region", name="Receipt").wait_for()
        assert await pay.locator("#receipt-amount").inner_text() == "€3.75"
        await page.locator("#screen[data-kind=paid]").wait_for()
    except BaseException:
        print("the demo's output:\n" + "".join(demo.lines))
        raise
    finally:
        await asyncio.to_thread(_assert_stops_promptly, demo)
        demo.kill()
