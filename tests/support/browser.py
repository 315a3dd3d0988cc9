"""Headless Chromium for the web pages' tests: Debian's chromium, driven by
Playwright for Python (its own browser download is not used: the machine's
chromium is the one a user has).

Each test gets a fresh browser context (no cookies, no storage) and, when
it ends, pass or fail, a full-page screenshot of each of its pages under
``test-results/screenshots/``. A script error or a refused resource (a
Content-Security-Policy violation, a 404 for an asset) in any page fails
the test, and so does a request to any host but loopback: the pages are
meant to load clean, and to work with no Internet connection.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM_ENV = "SCAN2PAY_CHROMIUM"
RESULTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
# Without the networking flags Chromium reaches for Google's hosts at start,
# and this sandbox's closed network refuses it loudly; as root it needs
# --no-sandbox.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_ASSETS = {"stylesheet", "script", "image", "font", "manifest"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str:
    """The Chromium to drive, or a failure that says how to install it."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"Chromium not found at {path}: install Debian's package with "
            "'sudo apt-get install chromium' (make test does it when run as root), "
            f"or name another build in {CHROMIUM_ENV}",
            pytrace=False,
        )
    return path


def _file_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:150]


@dataclass
class BrowserSession:
    """The test's browser: ``page()`` opens a page in a context of its own."""

    browser: Any  # playwright.async_api.Browser
    test_name: str
    problems: list[str] = field(default_factory=list)
    _contexts: list[Any] = field(default_factory=list)
    _pages: list[Any] = field(default_factory=list)

    async def page(self, *, viewport: dict[str, int] = PHONE, **options: Any) -> Any:
        settings = {"locale": "en-GB", "timezone_id": "Europe/Berlin", **options}
        context = await self.browser.new_context(viewport=viewport, **settings)
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = await context.new_page()
        self._watch(page)
        self._pages.append(page)
        return page

    def adopt(self, page: Any) -> Any:
        """A page that one of the test's pages opened (a link to a new tab):
        watched and photographed like those ``page()`` opens."""
        self._watch(page)
        self._pages.append(page)
        return page

    def _watch(self, page: Any) -> None:
        def on_console(message: Any) -> None:
            # A refused API call is logged too, and is often what the test
            # asks for; a failed asset is caught by its response below.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                self.problems.append(f"console error on {page.url}: {message.text}")

        def on_response(response: Any) -> None:
            if response.status >= 400 and response.request.resource_type in _ASSETS:
                self.problems.append(f"{response.status} for {response.url} on {page.url}")

        def on_request(request: Any) -> None:
            # No CDN, no web font, no analytics: the pages work offline.
            parts = urlsplit(request.url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK:
                self.problems.append(f"{page.url} asked another host for {request.url}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("request", on_request)
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))

    async def screenshots(self) -> list[Path]:
        RESULTS.mkdir(parents=True, exist_ok=True)
        saved = []
        for n, page in enumerate(self._pages):
            if page.is_closed():
                continue
            suffix = "" if n == 0 else f"-{n + 1}"
            path = RESULTS / f"{self.test_name}{suffix}.png"
            with contextlib.suppress(Exception):  # a page that crashed has no picture
                await page.screenshot(path=str(path), full_page=True)
                saved.append(path)
        return saved

    async def close(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):
                await context.close()


@contextlib.asynccontextmanager
async def browser_session(nodeid: str) -> AsyncIterator[BrowserSession]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=LAUNCH_ARGS
        )
        session = BrowserSession(browser, _file_name(nodeid))
        try:
            yield session
        finally:
            await session.screenshots()
            await session.close()
            await browser.close()


# axe-core's rules for WCAG 2.1 A and AA, and its best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


async def assert_accessible(page: Any) -> None:
    """axe-core (through axe-playwright-python) finds no violation of WCAG
    2.1 A/AA or of its best practices on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(
        page,
        options={"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]},
    )
    assert results.violations_count == 0, results.generate_report()
