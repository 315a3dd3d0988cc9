"""The merchant board's session and CSRF protection over plain HTTP: the
cookie's flags, what ends a session, what a state-changing request must
carry, and the event stream's refusals and messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from psp_server.api.appkeys import SESSION_KEYS
from psp_server.core.payloads import CheckoutRequest
from psp_server.runtime.config import Rate
from psp_server.storage import Storage, open_storage
from psp_server.web import board_stream
from psp_server.web.session_keys import INFO, SESSION_MS, SessionKeys, hkdf_sha256
from scan2pay_common.timefmt import now_ms
from tests.support.board import (
    EventStream,
    Signed,
    cookies_of,
    local_midnight,
    request,
    sign_in,
    sign_in_form,
)
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp

HOUR = 3_600_000


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.2)
    yield server
    await stop_psp(server)


async def _status(psp: Psp, merchant: Merchant, checkout_id: str) -> str:
    code, body = await psp.call("GET", f"/v1/checkouts/{checkout_id}", headers=merchant.auth)
    assert code == 200, body
    return str(body["status"])


async def _board_status(psp: Psp, signed: Signed) -> int:
    response, _ = await request(psp, "GET", "/merchant/session", headers=signed.headers)
    return response.status


# The session itself, without a server.


def test_the_session_key_is_rfc_5869s_hkdf() -> None:
    # RFC 5869, A.3: SHA-256, no salt, no info; the first 32 bytes of its OKM.
    assert hkdf_sha256(bytes([0x0B]) * 22, b"").hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
    )
    # What the cryptography package's HKDF derived for the session key before
    # it was dropped: sessions issued by an older PSP stay valid.
    assert hkdf_sha256(bytes(range(32)), INFO).hex() == (
        "b015369a8cd75e26bb2d66ff60f19520799fbc63da70c640575e73b7aa74b6d5"
    )


def test_a_session_cookie_is_signed_bound_to_the_key_and_runs_out() -> None:
    keys = SessionKeys(b"k" * 32)
    now = 1_764_000_000_000
    cookie = keys.issue("mer_0123456789abcdef", "hash-of-key", 0, now=now)
    session = keys.verify(cookie, now=now + 1000)
    assert session is not None
    assert session.merchant_id == "mer_0123456789abcdef"
    assert "hash-of-key" not in cookie
    assert keys.bound_to(session, "hash-of-key", 0)
    assert not keys.bound_to(session, "hash-of-another-key", 0)
    assert not keys.bound_to(session, "hash-of-key", 1)  # signed out since
    # Twelve hours, not a millisecond more.
    assert keys.verify(cookie, now=now + SESSION_MS - 1) is not None
    assert keys.verify(cookie, now=now + SESSION_MS) is None
    # Another merchant's id, another time, a broken MAC, another PSP's key.
    forged = cookie.replace("mer_0123456789abcdef", "mer_0123456789abcdee")
    assert keys.verify(forged, now=now) is None
    assert keys.verify(cookie.replace(f".{now}.", f".{now + 1}."), now=now) is None
    assert keys.verify(cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), now=now) is None
    assert SessionKeys(b"x" * 32).verify(cookie, now=now) is None
    assert keys.verify("", now=now) is None
    assert keys.verify("....", now=now) is None
    # The CSRF token is the session's own.
    other = keys.verify(keys.issue("mer_0123456789abcdef", "hash-of-key", 0, now=now + 1), now=now)
    assert other is not None
    assert keys.csrf_ok(session, keys.csrf_token(session))
    assert not keys.csrf_ok(session, keys.csrf_token(other))
    assert not keys.csrf_ok(session, None)
    assert not keys.csrf_ok(session, "")
    # Two browsers signing in within the same millisecond (seen in CI) are
    # still two sessions: one's token does not work for the other.
    twin = keys.verify(keys.issue("mer_0123456789abcdef", "hash-of-key", 0, now=now), now=now)
    assert twin is not None
    assert twin.cookie != session.cookie
    assert not keys.csrf_ok(session, keys.csrf_token(twin))


# Signing in.


async def test_sign_in_sets_a_strict_http_only_session_cookie(psp: Psp) -> None:
    merchant = await psp.merchant("Café Zoë")
    response, html = await request(psp, "GET", "/merchant")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    form_cookie = cookies_of(response)["s2p-signin"]
    assert form_cookie["httponly"]
    assert form_cookie["samesite"] == "Strict"
    assert form_cookie["path"] == "/"
    assert not form_cookie["secure"]
    assert 'action="merchant/sign-in"' in html

    signed = await sign_in(psp, merchant.key)
    assert signed.cookie_name == "s2p-merchant"
    _, html = await request(psp, "GET", "/merchant", headers=signed.headers)
    assert "Café Zoë" in html
    assert 'src="static/board.js?v=' in html
    assert await _board_status(psp, signed) == 200

    name, token, field = await sign_in_form(psp)
    response, _ = await request(
        psp,
        "POST",
        "/merchant/sign-in",
        headers={"Cookie": f"{name}={token}"},
        data={"csrf": field, "key": merchant.key},
    )
    assert response.status == 303
    assert response.headers["Location"] == "../merchant"
    session = cookies_of(response)["s2p-merchant"]
    assert session["httponly"]
    assert session["samesite"] == "Strict"
    assert session["path"] == "/"
    assert session["max-age"] == str(12 * 3600)
    assert not session["secure"]
    assert cookies_of(response)["s2p-signin"]["max-age"] == "0"  # the form's token is spent


async def test_behind_https_the_cookies_are_secure_and_host_prefixed(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"), public_url="HTTPS://PAY.EXAMPLE.COM")
    try:
        merchant = await psp.merchant()
        name, token, field = await sign_in_form(psp)
        assert name == "__Host-s2p-signin"
        response, _ = await request(
            psp,
            "POST",
            "/merchant/sign-in",
            # The browser sees the public origin; the PSP behind its proxy another.
            headers={"Cookie": f"{name}={token}", "Origin": "https://pay.example.com"},
            data={"csrf": field, "key": merchant.key},
        )
        assert response.status == 303
        session = cookies_of(response)["__Host-s2p-merchant"]
        assert session["secure"]
        assert session["httponly"]
        assert session["path"] == "/"
        assert not session["domain"]
        signed = Signed("__Host-s2p-merchant", session.value, "")
        assert await _board_status(psp, signed) == 200
        # The unprefixed name is not a session here.
        plain = Signed("s2p-merchant", session.value, "")
        assert await _board_status(psp, plain) == 401
    finally:
        await stop_psp(psp)


async def test_a_wrong_key_gets_the_form_again_and_no_cookie(psp: Psp) -> None:
    merchant = await psp.merchant()
    await psp.storage.replace_secret("merchant", merchant.id, revoke=False)  # the old key is dead
    name, token, field = await sign_in_form(psp)
    for key in ("mk_wrong", merchant.key, ""):
        response, html = await request(
            psp,
            "POST",
            "/merchant/sign-in",
            headers={"Cookie": f"{name}={token}"},
            data={"csrf": field, "key": key},
        )
        assert response.status == 401
        assert "Set-Cookie" not in response.headers
        assert 'role="alert">That merchant key was not accepted' in html
        assert 'aria-invalid="true"' in html


async def test_sign_in_without_the_forms_token_or_from_another_site_is_refused(
    psp: Psp,
) -> None:
    merchant = await psp.merchant()
    name, token, field = await sign_in_form(psp)
    attempts = [
        ({}, {"csrf": field, "key": merchant.key}),  # no cookie: a cross-site form
        ({"Cookie": f"{name}={token}"}, {"key": merchant.key}),  # no field
        ({"Cookie": f"{name}={token}"}, {"csrf": field + "x", "key": merchant.key}),
        ({"Cookie": f"{name}={token}x"}, {"csrf": field + "x", "key": merchant.key}),
        (
            {"Cookie": f"{name}={token}", "Origin": "https://evil.example"},
            {"csrf": field, "key": merchant.key},
        ),
        ({"Cookie": f"{name}={token}", "Origin": "null"}, {"csrf": field, "key": merchant.key}),
    ]
    for headers, form in attempts:
        response, html = await request(psp, "POST", "/merchant/sign-in", headers=headers, data=form)
        assert response.status == 403, (headers, form)
        assert "s2p-merchant" not in cookies_of(response)
        assert 'role="alert">' in html
        assert "expired" in html or "another site" in html
        # The form comes back with a fresh token, ready to use.
        assert cookies_of(response)["s2p-signin"].value != token


# What ends a session.


async def test_a_tampered_expired_or_unbound_cookie_is_no_session(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    keys = psp.server.app[SESSION_KEYS]
    other = await psp.merchant("Other")
    found = await psp.storage.merchant_with_key_hash(merchant.id)
    assert found is not None
    _, key_hash, epoch = found
    forged = [
        signed.cookie.replace(merchant.id, other.id),
        signed.cookie[:-1] + ("A" if signed.cookie[-1] != "A" else "B"),
        # Made with the right key, but twelve hours old.
        keys.issue(
            merchant.id,
            key_hash,
            epoch,
            now=now_ms() - SESSION_MS - 1000,
        ),
        # Good for the merchant, but bound to a key it does not have.
        keys.issue(merchant.id, "0" * 64, epoch, now=now_ms()),
        # Right key, but a session epoch that has not come yet.
        keys.issue(merchant.id, key_hash, epoch + 1, now=now_ms()),
    ]
    for cookie in forged:
        bad = Signed(signed.cookie_name, cookie, signed.csrf)
        assert await _board_status(psp, bad) == 401
        response, html = await request(psp, "GET", "/merchant", headers=bad.headers)
        assert response.status == 200
        assert "Merchant sign-in" in html
        assert "Your session has ended" in html
        assert cookies_of(response)["s2p-merchant"]["max-age"] == "0"
    assert await _board_status(psp, signed) == 200


async def test_rotating_or_revoking_the_key_ends_its_sessions(psp: Psp) -> None:
    merchant = await psp.merchant()
    first = await sign_in(psp, merchant.key)
    new_key = await psp.storage.replace_secret("merchant", merchant.id, revoke=False)
    assert new_key is not None
    assert await _board_status(psp, first) == 401
    second = await sign_in(psp, new_key)
    assert await _board_status(psp, second) == 200
    await psp.storage.replace_secret("merchant", merchant.id, revoke=True)
    assert await _board_status(psp, second) == 401


async def test_sign_out_needs_the_token_and_then_clears_the_cookie(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    response, html = await request(psp, "POST", "/merchant/sign-out", headers=signed.headers)
    assert response.status == 403
    assert 'role="alert"' in html
    assert "Set-Cookie" not in response.headers
    assert await _board_status(psp, signed) == 200
    response, _ = await request(
        psp, "POST", "/merchant/sign-out", headers=signed.headers, data={"csrf": signed.csrf}
    )
    assert response.status == 303
    assert response.headers["Location"] == "../merchant"
    assert cookies_of(response)["s2p-merchant"]["max-age"] == "0"


async def test_signing_out_ends_the_session_even_for_a_kept_copy_of_the_cookie(
    psp: Psp,
) -> None:
    """The cookie is the whole session: a copy kept from before the sign-out
    (another tab, a stolen cookie) must stop working with it, and the board's
    stream must end. A new sign-in works again."""
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    elsewhere = await sign_in(psp, merchant.key)  # another browser of the merchant's
    assert await _board_status(psp, signed) == 200
    response, _ = await request(
        psp, "POST", "/merchant/sign-out", headers=signed.headers, data={"csrf": signed.csrf}
    )
    assert response.status == 303
    assert await _board_status(psp, signed) == 401
    assert await _board_status(psp, elsewhere) == 401
    again = await sign_in(psp, merchant.key)
    assert await _board_status(psp, again) == 200


# Cancelling from the board.


async def test_cancel_needs_a_session_a_token_and_this_origin(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    someone = await sign_in(psp, merchant.key)  # another browser: another token
    checkout = await psp.checkout(merchant, order_id="A-1")
    path = f"/merchant/checkouts/{checkout['id']}/cancel"
    json_accept = {"Accept": "application/json"}
    refusals = [
        (401, json_accept, {"csrf": signed.csrf}),  # no session
        (403, {**signed.headers, **json_accept}, {}),
        (403, {**signed.headers, **json_accept}, {"csrf": someone.csrf}),
        (403, {**signed.headers, **json_accept, "X-CSRF-Token": "x"}, {}),
        (
            403,
            {**signed.headers, **json_accept, "Origin": "http://127.0.0.1:1"},
            {"csrf": signed.csrf},
        ),
    ]
    for status, headers, form in refusals:
        response, body = await request(psp, "POST", path, headers=headers, data=form)
        assert response.status == status, (headers, form, body)
        assert response.content_type == "application/json"
        assert await _status(psp, merchant, checkout["id"]) == "pending"
    # As a plain form, a refusal is a page.
    response, html = await request(psp, "POST", path, headers=signed.headers)
    assert response.status == 403
    assert 'role="alert"' in html
    assert await _status(psp, merchant, checkout["id"]) == "pending"

    # The token in a header, with this site's origin: cancelled, as JSON.
    response, body = await request(
        psp,
        "POST",
        path,
        headers={
            **signed.headers,
            **json_accept,
            "X-CSRF-Token": signed.csrf,
            "Origin": psp.url,
        },
    )
    assert response.status == 200, body
    assert '"status":"cancelled"' in body.replace(" ", "")
    assert await _status(psp, merchant, checkout["id"]) == "cancelled"

    # A plain form post goes back to the board; a refusal says why.
    second = await psp.checkout(merchant, order_id="A-2")
    form_path = f"/merchant/checkouts/{second['id']}/cancel"
    response, _ = await request(
        psp, "POST", form_path, headers=signed.headers, data={"csrf": signed.csrf}
    )
    assert response.status == 303
    assert response.headers["Location"] == "../../../merchant"
    assert await _status(psp, merchant, second["id"]) == "cancelled"
    wallet = await psp.wallet()
    paid = await psp.checkout(merchant, order_id="A-3")
    assert (await psp.pay(wallet, code_of(paid)))[0] == 201
    response, body = await request(
        psp,
        "POST",
        f"/merchant/checkouts/{paid['id']}/cancel",
        headers={**signed.headers, **json_accept},
        data={"csrf": signed.csrf},
    )
    assert response.status == 409
    assert "already_paid" in body
    # Another merchant's checkout is no checkout of ours.
    other = await psp.merchant("Other")
    theirs = await psp.checkout(other, order_id="B-1")
    response, body = await request(
        psp,
        "POST",
        f"/merchant/checkouts/{theirs['id']}/cancel",
        headers={**signed.headers, **json_accept},
        data={"csrf": signed.csrf},
    )
    assert response.status == 404
    assert "not_found" in body
    assert await _status(psp, other, theirs["id"]) == "pending"


async def test_the_merchant_pages_are_not_behind_the_wallet_and_qr_limits(tmp_path: Path) -> None:
    one = Rate(1, 60.0)
    psp = await start_psp(
        str(tmp_path / "psp.db"),
        rate_qr_per_ip=one,
        rate_qr_per_token=one,
        rate_pay_per_ip=one,
        rate_pay_per_token=one,
    )
    try:
        merchant = await psp.merchant()
        for _ in range(3):
            signed = await sign_in(psp, merchant.key)
            assert await _board_status(psp, signed) == 200
    finally:
        await stop_psp(psp)


# The event stream.


async def test_the_stream_refuses_without_a_session_or_a_day_out_of_range(psp: Psp) -> None:
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    since = local_midnight()
    response, body = await request(psp, "GET", f"/merchant/stream?since={since}")
    assert response.status == 401
    assert "unauthorized" in body
    now = now_ms()
    for bad in (str(now - 49 * HOUR), str(now + 2 * HOUR), "yesterday", "-1", "", "1e12"):
        response, body = await request(
            psp, "GET", f"/merchant/stream?since={bad}", headers=signed.headers
        )
        assert response.status == 400, bad
        assert "invalid_since" in body, bad
    response, body = await request(psp, "GET", "/merchant/stream", headers=signed.headers)
    assert response.status == 400


async def test_the_stream_starts_with_the_day_and_follows_it(db: str) -> None:
    """On both databases: the snapshot, then a checkout made through the
    API, one paid through the API, and one made and paid by another
    process (another storage on the same database), which neither pokes
    nor wakes this one."""
    psp = await start_psp(db, sweep_interval=0.2)
    other_process = await asyncio.to_thread(open_storage, db)
    try:
        merchant = await psp.merchant()
        wallet = await psp.wallet("EUR", 100_000)
        earlier = await psp.checkout(merchant, order_id="A-0", amount=500)
        signed = await sign_in(psp, merchant.key)
        async with psp.http.get(
            f"{psp.url}/merchant/stream?since={local_midnight()}", headers=signed.headers
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            events = EventStream(response)
            snapshot = await events.next_of("snapshot")
            assert [row["order_id"] for row in snapshot["rows"]] == ["A-0"]
            assert snapshot["rows"][0]["amount_text"] == "€5.00"
            assert snapshot["totals"][0]["pending"] == {"count": 1, "amount": 500, "text": "€5.00"}
            assert snapshot["terminals"] == {"unknown": "no_broker", "terminals": []}

            made = await psp.checkout(merchant, order_id="A-1", amount=1234)
            rows = await events.next_of("rows")
            assert [(r["order_id"], r["status"]) for r in rows["rows"]] == [("A-1", "pending")]
            assert rows["totals"][0]["pending"]["text"] == "€17.34"

            assert (await psp.pay(wallet, code_of(made)))[0] == 201
            rows = await events.next_of("rows")
            assert [(r["order_id"], r["status"]) for r in rows["rows"]] == [("A-1", "paid")]
            assert rows["totals"][0]["paid"] == {"count": 1, "amount": 1234, "text": "€12.34"}

            # Another process: found by the poll (a new checkout) and by the
            # event cursor (its payment).
            started = time.monotonic()
            await _create_elsewhere(other_process, merchant.id, "B-1")
            rows = await events.next_of("rows")
            assert [(r["order_id"], r["status"]) for r in rows["rows"]] == [("B-1", "pending")]
            await psp.storage.refund(merchant.id, made["id"], 234, now=now_ms())
            rows = await events.next_of("rows")
            assert rows["rows"][0]["refunded_text"] == "€2.34"
            assert rows["totals"][0]["paid"]["text"] == "€10.00"
            assert rows["totals"][0]["refunded"]["text"] == "€2.34"
            assert time.monotonic() - started < 4
            assert earlier["status"] == "pending"
    finally:
        await other_process.close()
        await stop_psp(psp)


async def _create_elsewhere(storage: Storage, merchant_id: str, order_id: str) -> None:
    request = CheckoutRequest(order_id, 700, "EUR", None, 300, None)
    await storage.create_checkout(merchant_id, request, public_url="HTTP://X", now=now_ms())


async def test_an_open_stream_ends_when_the_key_is_rotated(
    psp: Psp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_stream, "SESSION_CHECK_SECONDS", 0.1)
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    async with psp.http.get(
        f"{psp.url}/merchant/stream?since={local_midnight()}", headers=signed.headers
    ) as response:
        events = EventStream(response)
        await events.next_of("snapshot")
        await psp.storage.replace_secret("merchant", merchant.id, revoke=False)
        assert await events.next_of("signed_out") == {}
        with pytest.raises(EOFError):
            await events.next()


async def test_an_open_stream_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"))
    merchant = await psp.merchant()
    signed = await sign_in(psp, merchant.key)
    response = await psp.http.get(
        f"{psp.url}/merchant/stream?since={local_midnight()}", headers=signed.headers
    )
    events = EventStream(response)
    await events.next_of("snapshot")
    started = time.monotonic()
    await psp.server.stop()
    assert time.monotonic() - started < 3
    with pytest.raises((EOFError, aiohttp.ClientError)):
        await events.next(timeout=2)
    response.release()
    await psp.http.close()
