"""The browser tests' own guard (tests/support/browser.py) catches what it
promises to: a page that reaches past loopback would not work offline."""

from __future__ import annotations

from tests.support.browser import BrowserSession


async def test_a_request_to_another_host_fails_the_test(browser: BrowserSession) -> None:
    page = await browser.page()
    # Nothing leaves the machine: every request is aborted before it is sent.
    await page.route("**/*", lambda route: route.abort())
    await page.set_content('<img src="https://cdn.example/font.woff2" alt="">')
    await page.wait_for_load_state()
    assert browser.problems == ["about:blank asked another host for https://cdn.example/font.woff2"]
    browser.problems.clear()  # this test's one problem is the one it made
