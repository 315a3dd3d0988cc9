"""``/pay`` over HTTP on a live PSP: a payment code given as text (a URL of
this PSP's, or an EMV payload around one) leads to its payment page; any
other text gets the form again with the reason, changes nothing, and is
logged as its reason alone, escaped and cut short."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from psp_server.core.landing import MAX_TEXT
from scan2pay_common import emv
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp

HTML = {"Accept": "text/html"}
EMV_SETTINGS = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"))
    yield server
    await stop_psp(server)


async def _emv_merchant(psp: Psp) -> Merchant:
    merchant = await psp.merchant("Café Müller")
    status, body = await psp.call("PATCH", "/v1/merchant", json=EMV_SETTINGS, headers=merchant.auth)
    assert status == 200, body
    return merchant


async def _go(psp: Psp, text: str, *, post: bool = False) -> tuple[int, str | None, str]:
    """Status, Location and body of ``/pay`` given ``text``, not followed."""
    if post:
        request = psp.http.post(
            f"{psp.url}/pay", data={"code": text}, headers=HTML, allow_redirects=False
        )
    else:
        request = psp.http.get(
            f"{psp.url}/pay", params={"code": text}, headers=HTML, allow_redirects=False
        )
    async with request as response:
        if response.status != 303:
            assert response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        return response.status, response.headers.get("Location"), await response.text()


def _alert(html: str) -> str:
    found = re.search(r'<p id="message" class="message error" role="alert">(.*?)</p>', html, re.S)
    assert found, html
    return unescape(found.group(1))


def _typed(html: str) -> str:
    found = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S)
    assert found, html
    return unescape(found.group(1))


async def _status(psp: Psp, checkout: dict[str, Any]) -> str:
    status, info = await psp.call(
        "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"}
    )
    assert status == 200, info
    return str(info["status"])


async def test_an_emv_payload_leads_to_its_checkouts_payment_page(psp: Psp) -> None:
    merchant = await _emv_merchant(psp)
    checkout = await psp.checkout(merchant, terminal_id="lane-1")
    payload = checkout["qr_payload"]
    assert emv.url_of_payload(payload) == checkout["qr_url"]
    for post in (False, True):
        status, location, _ = await _go(psp, payload, post=post)
        assert (status, location) == (303, f"Q/{code_of(checkout)}")
    # As a browser follows it: the checkout's own page.
    async with psp.http.get(f"{psp.url}/pay", params={"code": payload}, headers=HTML) as page:
        assert page.status == 200
        assert str(page.url) == f"{psp.url}/Q/{code_of(checkout)}"
        html = await page.text()
    assert 'data-status="pending"' in html
    assert "€12.34" in html


async def test_a_url_and_a_printed_till_code_lead_to_their_pages(psp: Psp) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant)
    status, location, _ = await _go(psp, f"  {checkout['qr_url'].lower()}\r\n")
    assert (status, location) == (303, f"Q/{code_of(checkout)}")
    status, made = await psp.call(
        "POST", "/v1/terminals/till-1/static-codes", json={}, headers=merchant.auth
    )
    assert status == 201, made
    status, location, _ = await _go(psp, made["url"], post=True)
    assert (status, location) == (303, f"S/{made['code']}")


async def test_the_form_asks_for_the_code(psp: Psp) -> None:
    for query in ("", "?code=", "?code=%20"):
        async with psp.http.get(f"{psp.url}/pay{query}", headers=HTML) as response:
            assert response.status == 200
            html = await response.text()
        assert '<form id="code-form" method="post" action="pay">' in html
        assert 'role="alert"' not in html
        assert f"{psp.server.settings.public_url}/Q/…" in html
    status, _, html = await _go(psp, "", post=True)
    assert status == 400
    assert _alert(html) == "Paste the payment link or the text of the payment code first."


async def test_other_text_is_refused_with_its_reason_and_changes_nothing(
    psp: Psp, caplog: pytest.LogCaptureFixture
) -> None:
    merchant = await _emv_merchant(psp)
    checkout = await psp.checkout(merchant, terminal_id="lane-1")
    payload = checkout["qr_payload"]
    code = code_of(checkout)
    broken = payload[:-1] + ("0" if payload[-1] != "0" else "1")
    foreign_payload = emv.dynamic_payload(
        f"https://evil.example/Q/{code}",
        emv.MerchantInfo("Cafe Muller", "5814", "DE", "Berlin"),
        amount=1234,
        currency="EUR",
    )
    cases = {
        broken: "CRC mismatch",
        foreign_payload: "another payment service (evil.example)",
        checkout["qr_url"].replace("127.0.0.1", "localhost"): "another payment service (localhost)",
        f"{psp.url}/merchant": "leads to no payment on this service",
        f"{psp.url}/Q/{code[:10]}": "cut short or mistyped",
        "<script>alert(1)</script>": "neither a payment URL nor an EMV payload",
        f"https://ev\x1bil.example/\n/Q/{code}": "another payment service (ev\x1bil.example)",
    }
    caplog.set_level(logging.INFO, logger="psp_server.api.landing")
    for text, reason in cases.items():
        for post in (False, True):
            status, location, html = await _go(psp, text, post=post)
            assert (status, location) == (400, None), text
            assert reason in _alert(html), (text, _alert(html))
            # Kept for correcting it, as text: never as markup.
            assert _typed(html) == text.strip() or _typed(html) == text, text
            assert "<script>alert" not in html
            assert 'aria-invalid="true"' in html
    # Nothing of the checkout changed.
    assert await _status(psp, checkout) == "pending"
    refusals = [r.getMessage() for r in caplog.records if r.name == "psp_server.api.landing"]
    assert len(refusals) == 2 * len(cases)
    for line in refusals:
        assert line.startswith("landing page refused a code ("), line
        assert code not in line  # a live code is never logged
        assert "\x1b" not in line
        assert "\n" not in line
    assert any("ev\\x1bil.example" in line for line in refusals)


async def test_a_huge_text_is_refused_and_shown_back_cut_short(psp: Psp) -> None:
    # Under the 16 KiB a body may have (beyond it, 413 as on every route).
    text = "000201" + "9" * 10_000
    status, _, html = await _go(psp, text, post=True)
    assert status == 400
    assert f"a payment code has at most {MAX_TEXT}" in _alert(html)
    assert len(_typed(html)) == MAX_TEXT
