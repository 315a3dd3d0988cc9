"""The board's pairing page over plain HTTP, as a browser speaks to it (a
merchant's session cookie and the page's CSRF token), on a PSP in this
process: its clock is moved to expire codes, and its broker folder is a
temporary one (the accounts are real ``mosquitto_passwd`` entries; no
broker needs to read them here: tests/e2e/test_pairing_process.py runs one)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.api.appkeys import PAIRING
from psp_server.mqtt import accounts as mqtt_accounts
from psp_server.pairing.service import PAIRING_TTL_MS
from psp_server.runtime.config import Rate
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.timefmt import from_rfc3339
from tests.support.board import Signed, cookies_of, csrf_field, request, sign_in, sign_in_form
from tests.support.browser import BrowserSession, assert_accessible
from tests.support.psp import Merchant, Psp, start_psp, stop_psp

SECRET = "d" * 43
SECRET_HASH = hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    server = await start_psp(
        str(tmp_path / "psp.db"),
        terminal_mqtt=MqttTarget.parse("mqtts://127.0.0.1:8883"),
        mosquitto_dir=folder,
        rate_pair_approve_per_ip=Rate(8, 60.0),
        rate_pair_approve_per_code=Rate(3, 600.0),
    )
    yield server
    await stop_psp(server)


def _folder(psp: Psp) -> Path:
    folder = psp.server.settings.mosquitto_dir
    assert folder is not None
    return folder


def _files(psp: Psp) -> str:
    """The broker's password and ACL files, as one text."""
    folder = _folder(psp)
    return "\n--\n".join(
        (folder / name).read_text() if (folder / name).exists() else ""
        for name in (mqtt_accounts.PASSWORD_FILE, mqtt_accounts.ACL_FILE)
    )


async def _start(psp: Psp) -> dict[str, Any]:
    status, body = await psp.call("POST", "/v1/pairings", json={"device_secret_hash": SECRET_HASH})
    assert status == 201, body
    started: dict[str, Any] = body
    return started


async def _poll(psp: Psp, started: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    return await psp.call(
        "POST", f"/v1/pairings/{started['pairing_id']}/poll", json={"device_secret": secret}
    )


async def _approve(
    psp: Psp, signed: Signed, code: str, terminal_id: str = "lane-1", **form: str
) -> tuple[int, str]:
    response, html = await request(psp, "GET", "/merchant/pair", headers=signed.headers)
    assert response.status == 200, html
    data = {"csrf": csrf_field(html), "code": code, "terminal_id": terminal_id, **form}
    response, html = await request(psp, "POST", "/merchant/pair", headers=signed.headers, data=data)
    return response.status, html


async def _state(psp: Psp, merchant: Merchant) -> Any:
    """What a refusal must leave as it was: the pairings, the paired
    terminals, and the broker's files."""
    store = psp.server.app[PAIRING].store
    return (await store.terminals(merchant.id), _files(psp))


async def test_approving_on_the_board_makes_the_account_and_hands_it_over_once(psp: Psp) -> None:
    merchant = await psp.merchant("Café Zoë")
    signed = await sign_in(psp, merchant.key)
    started = await _start(psp)
    status, html = await _approve(psp, signed, started["code"].lower())  # typed in any case
    assert status == 200, html
    assert "Terminal lane-1 is paired" in html
    assert 'value="lane-1"' in html  # listed, with its unpair button
    assert f"user {merchant.id}/lane-1\n" in _files(psp)
    status, body = await _poll(psp, started)
    assert (status, body["status"]) == (200, "approved")
    settings = body["settings"]
    assert settings["merchant_name"] == "Café Zoë"
    assert settings["mqtt_url"].startswith(f"mqtts://{merchant.id}%2Flane-1:")
    assert settings["mqtt_url"].endswith("@127.0.0.1:8883")
    assert settings["mqtt_ca"] is None
    status, body = await _poll(psp, started)
    assert body == {"status": "paired", "merchant_id": merchant.id, "terminal_id": "lane-1"}


async def test_the_qr_link_fills_the_code_in_and_survives_signing_in(psp: Psp) -> None:
    merchant = await psp.merchant()
    started = await _start(psp)
    plain = started["code"].replace("-", "")
    assert started["pairing_url"].endswith(f"/merchant/pair?code={plain}")
    # Signed out: the sign-in form carries the code on.
    response, html = await request(psp, "GET", f"/merchant/pair?code={plain}")
    assert response.status == 200
    assert f'name="then" value="{plain}"' in html
    (name, morsel), *_ = cookies_of(response).items()
    response, _ = await request(
        psp,
        "POST",
        "/merchant/sign-in",
        headers={"Cookie": f"{name}={morsel.value}"},
        data={"csrf": csrf_field(html), "key": merchant.key, "then": plain},
    )
    assert response.status == 303
    assert response.headers["Location"] == f"../merchant/pair?code={plain}"
    # Only a code goes on: anything else sends the merchant to the board.
    name, token, field = await sign_in_form(psp)
    response, _ = await request(
        psp,
        "POST",
        "/merchant/sign-in",
        headers={"Cookie": f"{name}={token}"},
        data={"csrf": field, "key": merchant.key, "then": "//evil.example/"},
    )
    assert response.headers["Location"] == "../merchant"
    signed = await sign_in(psp, merchant.key)
    link = f"/merchant/pair?code={plain}"
    response, html = await request(psp, "GET", link, headers=signed.headers)
    assert f'value="{started["code"]}"' in html
    response, html = await request(
        psp, "GET", "/merchant/pair?code=<script>", headers=signed.headers
    )
    assert "<script>" not in html.split("<main>", 1)[1]


@pytest.mark.parametrize(
    ("code", "terminal_id", "status", "said"),
    [
        ("ZZZZ-ZZZZ-ZZ", "lane-1", 404, "no terminal is waiting with this code"),
        ("ABCD-EFGH-J0", "lane-1", 422, "codes never use 0, 1, O, I, L or U"),
        ("ABCD-EFGH", "lane-1", 422, "a pairing code has 10 letters and digits"),
        ("", "lane-1", 422, "enter the pairing code"),
        ("{code}", "mer_other/lane-1", 422, "terminal_id may contain only"),
        ("{code}", "", 422, "terminal_id must not be empty"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(
    psp: Psp, code: str, terminal_id: str, status: int, said: str
) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    started = await _start(psp)
    before = await _state(psp, merchant)
    got, html = await _approve(psp, signed, code.format(code=started["code"]), terminal_id)
    assert got == status, html
    assert said in html
    assert 'role="alert"' in html
    assert await _state(psp, merchant) == before
    assert (await _poll(psp, started))[1]["status"] == "pending"


async def test_a_used_code_an_expired_code_and_a_taken_terminal_id_are_refused(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    first = await _start(psp)
    assert (await _approve(psp, signed, first["code"]))[0] == 200
    before = await _state(psp, merchant)

    status, html = await _approve(psp, signed, first["code"], "lane-2")
    assert (status, "this code has been used already" in html) == (409, True)
    second = await _start(psp)
    status, html = await _approve(psp, signed, second["code"], "lane-1")
    assert (status, "a terminal lane-1 is paired already" in html) == (409, True)
    assert await _state(psp, merchant) == before

    # A second before its ten minutes are up, by the PSP's clock: still waiting.
    psp.clock.advance_to(from_rfc3339(second["expires_at"]) - 1000)
    assert (await _poll(psp, second))[1]["status"] == "pending"
    # Ten minutes later.
    psp.clock.advance(PAIRING_TTL_MS)
    status, html = await _approve(psp, signed, second["code"], "lane-2")
    assert (status, "this code has expired" in html) == (410, True)
    assert await _state(psp, merchant) == before
    status, body = await _poll(psp, second)
    assert (status, body["error"]["code"]) == (410, "pairing_expired")


async def test_a_broker_account_made_by_hand_keeps_its_terminal_id(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    mqtt_accounts.create_account(
        _folder(psp), mqtt_accounts.terminal_account(merchant.id, "lane-9")
    )
    started = await _start(psp)
    before = await _state(psp, merchant)
    status, html = await _approve(psp, signed, started["code"], "lane-9")
    assert status == 409, html
    assert "the broker already has an account for terminal lane-9" in html
    assert await _state(psp, merchant) == before
    assert (await _poll(psp, started))[1]["status"] == "pending"  # still free to pair elsewhere


async def test_a_form_for_another_merchant_or_without_the_token_is_refused(psp: Psp) -> None:
    merchant, other = await psp.merchant("A"), await psp.merchant("B")
    signed = await sign_in(psp, merchant.key)
    started = await _start(psp)
    before = await _state(psp, merchant)
    status, html = await _approve(psp, signed, started["code"], merchant=other.id)
    assert status == 403
    assert "This form was for another merchant" in html
    response, html = await request(
        psp,
        "POST",
        "/merchant/pair",
        headers=signed.headers,
        data={"code": started["code"], "terminal_id": "lane-1"},
    )
    assert response.status == 403
    assert "security token" in html
    response, _ = await request(
        psp, "POST", "/merchant/pair", data={"code": started["code"], "terminal_id": "lane-1"}
    )
    assert response.status == 401
    assert await _state(psp, merchant) == before
    assert await _state(psp, other) == ([], before[1])


async def test_unpairing_drops_the_account_and_only_the_merchants_own(psp: Psp) -> None:
    a, b = await psp.merchant("A"), await psp.merchant("B")
    signed_a, signed_b = await sign_in(psp, a.key), await sign_in(psp, b.key)
    started = await _start(psp)
    assert (await _approve(psp, signed_b, started["code"], "lane-1"))[0] == 200
    assert (await _poll(psp, started))[1]["status"] == "approved"
    before = await _state(psp, b)

    # A's session cannot unpair B's lane-1: the id names A's own terminals only.
    response, html = await request(psp, "GET", "/merchant/pair", headers=signed_a.headers)
    response, html = await request(
        psp,
        "POST",
        "/merchant/pair/unpair",
        headers=signed_a.headers,
        data={"csrf": csrf_field(html), "terminal_id": "lane-1"},
    )
    assert response.status == 404
    assert "no terminal lane-1 is paired with this merchant" in html
    assert await _state(psp, b) == before

    response, html = await request(psp, "GET", "/merchant/pair", headers=signed_b.headers)
    response, html = await request(
        psp,
        "POST",
        "/merchant/pair/unpair",
        headers=signed_b.headers,
        data={"csrf": csrf_field(html), "terminal_id": "lane-1"},
    )
    assert response.status == 200, html
    assert "Terminal lane-1 is unpaired" in html
    assert "no mosquitto_reload command is set" in html
    assert f"{b.id}/lane-1" not in "".join(_files(psp))
    assert (await _poll(psp, started))[1] == {"status": "revoked"}
    assert await _state(psp, b) == ([], _files(psp))


async def test_approvals_are_rate_limited_per_address_and_per_code(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    started = await _start(psp)
    before = await _state(psp, merchant)
    wrong = "ZZZZ-ZZZZ-ZZ" if started["code"] != "ZZZZ-ZZZZ-ZZ" else "YYYY-YYYY-YY"
    # Per code: three tries of one code in ten minutes, then a wait.
    for _ in range(3):
        assert (await _approve(psp, signed, wrong))[0] == 404
    status, html = await _approve(psp, signed, wrong)
    assert status == 429
    assert "Too many attempts; try again in" in html
    # Per address: eight approvals a minute, whatever the code.
    for n in range(4):
        assert (await _approve(psp, signed, f"ZZZZ-ZZZZ-{'23456789'[n]}Z"))[0] == 404
    status, html = await _approve(psp, signed, started["code"])
    assert status == 429, html
    assert await _state(psp, merchant) == before
    assert (await _poll(psp, started))[1]["status"] == "pending"


async def test_a_phone_that_scanned_the_qr_pairs_the_terminal_in_chromium(
    psp: Psp, browser: BrowserSession
) -> None:
    """The merchant's phone opens the QR's link, signs in, and lands on the
    pairing page with the code filled in; the page passes axe's checks."""
    merchant = await psp.merchant("Café Zoë")
    started = await _start(psp)
    page = await browser.page()  # a phone's viewport
    link = started["pairing_url"].replace(psp.server.settings.public_url or "", psp.url)
    await page.goto(link)
    await page.get_by_label("Merchant key").fill(merchant.key)
    await page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Code on the terminal's screen")
    await code.wait_for()
    assert await code.input_value() == started["code"]
    await assert_accessible(page)
    await page.get_by_label("Terminal id").fill("lane-1")
    await page.get_by_role("button", name="Pair this terminal").click()
    await page.get_by_role("status").filter(has_text="Terminal lane-1 is paired").wait_for()
    await page.get_by_role("button", name="Unpair lane-1").wait_for()
    await assert_accessible(page)
    assert (await _poll(psp, started))[1]["status"] == "approved"


async def test_a_broker_account_that_cannot_be_made_leaves_the_code_pending(
    psp: Psp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mosquitto_passwd failing (here /bin/false stands in for it): the
    approval is refused, the terminal id stays free, the code stays good."""
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    started = await _start(psp)
    before = await _state(psp, merchant)
    monkeypatch.setattr(mqtt_accounts, "mosquitto_passwd_binary", lambda: "/bin/false")
    status, html = await _approve(psp, signed, started["code"])
    assert status == 503, html
    assert "the broker account could not be made" in html
    assert await _state(psp, merchant) == before
    assert (await _poll(psp, started))[1]["status"] == "pending"
    monkeypatch.undo()
    assert (await _approve(psp, signed, started["code"]))[0] == 200
