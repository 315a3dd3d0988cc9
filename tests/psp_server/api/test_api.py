"""The HTTP API through a real server on a loopback port: every endpoint,
every refusal, and bad input of each kind, which must change nothing."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest

from psp_server.storage.sql_storage import SqlStorage
from tests.support.db import connect as db_connect
from tests.support.errors import assert_error
from tests.support.polling import wait_until
from tests.support.psp import Merchant, Psp, code_of, count_rows
from tests.support.shops import SHOP_NAME

# Creating checkouts


async def test_create_checkout_answers_the_whole_checkout(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(
        shop,
        order_id="A-1001",
        amount=1234,
        currency="EUR",
        terminal_id="lane-1",
        description="2 coffees",
    )
    assert checkout["status"] == "pending"
    assert (checkout["order_id"], checkout["amount"], checkout["currency"]) == (
        "A-1001",
        1234,
        "EUR",
    )
    assert checkout["terminal_id"] == "lane-1"
    assert checkout["description"] == "2 coffees"
    assert checkout["refunded_amount"] == 0
    assert re.fullmatch(r"co_[0-9a-f]{28}", checkout["id"])
    for stamp in ("created_at", "expires_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", checkout[stamp])
    assert checkout["qr_url"].startswith(psp.server.settings.require_public_url() + "/Q/")


async def test_default_expiry_is_five_minutes(psp: Psp, shop: Merchant) -> None:
    from scan2pay_common.timefmt import from_rfc3339

    checkout = await psp.checkout(shop)
    assert from_rfc3339(checkout["expires_at"]) - from_rfc3339(checkout["created_at"]) == 300_000
    longer = await psp.checkout(shop, order_id="B", expires_in=86_400)
    assert from_rfc3339(longer["expires_at"]) - from_rfc3339(longer["created_at"]) == 86_400_000


async def test_qr_code_is_160_random_bits_of_upper_case_base32(psp: Psp, shop: Merchant) -> None:
    codes = set()
    for n in range(20):
        code = code_of(await psp.checkout(shop, order_id=f"O-{n}"))
        assert re.fullmatch(r"[A-Z2-7]{32}", code)
        assert len(base64.b32decode(code)) == 20
        codes.add(code)
    assert len(codes) == 20


async def test_whole_qr_url_fits_the_alphanumeric_mode(psp: Psp, shop: Merchant) -> None:
    import segno

    url = (await psp.checkout(shop))["qr_url"]
    assert re.fullmatch(r"[0-9A-Z $%*+\-./:]+", url), url
    assert segno.make_qr(url).mode == "alphanumeric"


async def test_same_order_and_body_is_the_same_checkout(psp: Psp, shop: Merchant) -> None:
    body = {"order_id": "R-1", "amount": 500, "currency": "EUR", "terminal_id": "lane-2"}
    status1, first = await psp.call("POST", "/v1/checkouts", json=body, headers=shop.auth)
    status2, again = await psp.call("POST", "/v1/checkouts", json=body, headers=shop.auth)
    assert (status1, status2) == (201, 200)
    assert again == first
    # The default written out is the same request.
    status3, third = await psp.call(
        "POST", "/v1/checkouts", json={**body, "expires_in": 300}, headers=shop.auth
    )
    assert (status3, third) == (200, first)
    assert count_rows(psp, "checkouts") == 1


async def test_same_order_with_another_body_conflicts(psp: Psp, shop: Merchant) -> None:
    await psp.checkout(shop, order_id="R-2", amount=500)
    for change in (
        {"amount": 501},
        {"currency": "USD"},
        {"terminal_id": "lane-9"},
        {"description": "other"},
        {"expires_in": 60},
    ):
        body = {"order_id": "R-2", "amount": 500, "currency": "EUR", **change}
        answer = await psp.call("POST", "/v1/checkouts", json=body, headers=shop.auth)
        assert_error(answer, 409, "order_conflict")
    assert count_rows(psp, "checkouts") == 1


async def test_order_ids_belong_to_their_merchant(psp: Psp, shop: Merchant) -> None:
    other = await psp.merchant("Other")
    a = await psp.checkout(shop, order_id="SAME")
    b = await psp.checkout(other, order_id="SAME", amount=999)
    assert a["id"] != b["id"]


BAD_CHECKOUTS: list[tuple[Any, int, str]] = [
    ({"amount": 1, "currency": "EUR"}, 422, "missing_field"),
    ({"order_id": "X", "currency": "EUR"}, 422, "missing_field"),
    ({"order_id": "X", "amount": 1}, 422, "missing_field"),
    ({"order_id": "X", "amount": 1, "currency": "EUR", "tip": 5}, 422, "unknown_field"),
    ({"order_id": "X", "amount": 0, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": -5, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": 12.34, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": 12.0, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": "1234", "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": True, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": None, "currency": "EUR"}, 422, "invalid_amount"),
    ({"order_id": "X", "amount": 100_000_001, "currency": "EUR"}, 422, "amount_too_large"),
    ({"order_id": "X", "amount": 10**30, "currency": "EUR"}, 422, "amount_too_large"),
    ({"order_id": "X", "amount": 1, "currency": "ABC"}, 422, "invalid_currency"),
    ({"order_id": "X", "amount": 1, "currency": "eur"}, 422, "invalid_currency"),
    ({"order_id": "X", "amount": 1, "currency": "XAU"}, 422, "invalid_currency"),
    ({"order_id": "X", "amount": 1, "currency": 978}, 422, "invalid_currency"),
    ({"order_id": "X" * 65, "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    ({"order_id": "", "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    ({"order_id": "A/1", "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    ({"order_id": "A 1", "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    ({"order_id": "Ä1", "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    ({"order_id": 1001, "amount": 1, "currency": "EUR"}, 422, "invalid_order_id"),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "terminal_id": "a#b"},
        422,
        "invalid_terminal_id",
    ),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "terminal_id": 7},
        422,
        "invalid_terminal_id",
    ),
    ({"order_id": "X", "amount": 1, "currency": "EUR", "expires_in": 0}, 422, "invalid_expires_in"),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "expires_in": 86_401},
        422,
        "invalid_expires_in",
    ),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "expires_in": "300"},
        422,
        "invalid_expires_in",
    ),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "description": "x" * 201},
        422,
        "invalid_description",
    ),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "description": "a\nb"},
        422,
        "invalid_description",
    ),
    (
        {"order_id": "X", "amount": 1, "currency": "EUR", "description": 5},
        422,
        "invalid_description",
    ),
    ([{"order_id": "X", "amount": 1, "currency": "EUR"}], 400, "invalid_json"),
    ("just a string", 400, "invalid_json"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_CHECKOUTS)
async def test_bad_checkout_is_refused_and_stores_nothing(
    psp: Psp, shop: Merchant, body: Any, status: int, code: str
) -> None:
    assert_error(
        await psp.call("POST", "/v1/checkouts", json=body, headers=shop.auth), status, code
    )
    assert count_rows(psp, "checkouts") == 0


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"{'order_id': 'X'}", b"\xff\xfe", b"null", b"12", b"[]"]
)
async def test_malformed_json_is_400(psp: Psp, shop: Merchant, raw: bytes) -> None:
    answer = await psp.call(
        "POST", "/v1/checkouts", data=raw, headers={**shop.auth, "Content-Type": "application/json"}
    )
    assert_error(answer, 400, "invalid_json")
    assert count_rows(psp, "checkouts") == 0


async def test_amounts_take_each_currencys_minor_unit(psp: Psp, shop: Merchant) -> None:
    for n, (currency, amount) in enumerate([("JPY", 1200), ("KWD", 1500), ("EUR", 1)]):
        checkout = await psp.checkout(shop, order_id=f"C-{n}", currency=currency, amount=amount)
        assert (checkout["currency"], checkout["amount"]) == (currency, amount)


async def test_body_over_16_kib_is_413(psp: Psp, shop: Merchant) -> None:
    raw = (
        b'{"order_id": "X", "amount": 1, "currency": "EUR", "description": "' + b"x" * 20000 + b'"}'
    )
    answer = await psp.call(
        "POST", "/v1/checkouts", data=raw, headers={**shop.auth, "Content-Type": "application/json"}
    )
    assert_error(answer, 413, "payload_too_large")
    assert count_rows(psp, "checkouts") == 0


# Authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer mk_not-a-real-key"},
    ],
)
async def test_merchant_endpoints_need_a_valid_key(psp: Psp, headers: dict[str, str]) -> None:
    body = {"order_id": "X", "amount": 1, "currency": "EUR"}
    answer = await psp.call("POST", "/v1/checkouts", json=body, headers=headers)
    assert_error(answer, 401, "unauthorized")
    assert_error(await psp.call("GET", "/v1/checkouts/co_1", headers=headers), 401, "unauthorized")
    assert_error(
        await psp.call("POST", "/v1/checkouts/co_1/cancel", headers=headers), 401, "unauthorized"
    )
    assert_error(await psp.call("GET", "/v1/merchant", headers=headers), 401, "unauthorized")
    refund = await psp.call(
        "POST", "/v1/checkouts/co_1/refunds", json={"amount": 1}, headers=headers
    )
    assert_error(refund, 401, "unauthorized")
    assert_error(await psp.call("GET", "/v1/events", headers=headers), 401, "unauthorized")
    assert count_rows(psp, "checkouts") == 0


async def test_a_wallet_token_is_not_a_merchant_key(psp: Psp) -> None:
    wallet = await psp.wallet()
    answer = await psp.call("GET", "/v1/merchant", headers=wallet.auth)
    assert_error(answer, 401, "unauthorized")


async def test_merchant_endpoint_names_the_merchant(psp: Psp, shop: Merchant) -> None:
    status, body = await psp.call("GET", "/v1/merchant", headers=shop.auth)
    assert (status, body["id"], body["name"], body["qr_format"]) == (200, shop.id, SHOP_NAME, "url")


async def test_qr_settings_are_stored_and_shape_the_checkouts(psp: Psp, shop: Merchant) -> None:
    from scan2pay_common.emv import parse_payload

    settings = {
        "qr_format": "emv",
        "mcc": "5814",
        "country": "FR",
        "city": "Paris",
        "emv_gui": "fr.example.pay",
    }
    status, body = await psp.call("PATCH", "/v1/merchant", json=settings, headers=shop.auth)
    assert status == 200, body
    # Read back from the database, past the believed merchant key.
    found = await psp.storage.merchant_with_key_hash(shop.id)
    assert found is not None
    assert found[0].qr.to_dict() == {**settings, "emv_profile": "scan2pay"}
    checkout = await psp.checkout(shop, terminal_id="lane-2")
    parsed = parse_payload(checkout["qr_payload"])
    assert parsed.templates["26"] == {"00": "fr.example.pay", "01": checkout["qr_url"]}
    assert (parsed.objects["58"], parsed.merchant_city, parsed.terminal_label) == (
        "FR",
        "Paris",
        "lane-2",
    )
    # The QR page's look-up reads the same settings with the checkout.
    looked_up = await psp.storage.lookup_code(checkout["qr_url"].rsplit("/", 1)[1])
    assert looked_up is not None
    assert looked_up[1].qr.format == "emv"


async def test_unauthorized_answer_invites_a_bearer_token(psp: Psp) -> None:
    async with psp.http.get(psp.url + "/v1/merchant") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


# Reading and cancelling


async def test_get_checkout(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    # The create's answer is the checkout plus its display ticket.
    assert set(checkout.pop("display_ticket")) >= {"checkout_id", "signature"}
    assert await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth) == (
        200,
        checkout,
    )


async def test_another_merchants_checkout_is_not_found(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    other = await psp.merchant("Other")
    assert_error(
        await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=other.auth),
        404,
        "not_found",
    )
    assert_error(
        await psp.call("POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=other.auth),
        404,
        "not_found",
    )
    _, still = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert still["status"] == "pending"


@pytest.mark.parametrize("checkout_id", ["co_missing", "co_%2F..", "x" * 65])
async def test_unknown_checkout_is_404(psp: Psp, shop: Merchant, checkout_id: str) -> None:
    assert_error(
        await psp.call("GET", f"/v1/checkouts/{checkout_id}", headers=shop.auth), 404, "not_found"
    )


async def test_cancel_pending_then_again(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    status, cancelled = await psp.call(
        "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth
    )
    assert (status, cancelled["status"]) == (200, "cancelled")
    # Cancelling twice is a harmless repeat, not an error.
    assert await psp.call("POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth) == (
        200,
        cancelled,
    )


async def test_cancel_after_payment_is_409(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    assert (await psp.pay(await psp.wallet(), code_of(checkout)))[0] == 201
    answer = await psp.call("POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth)
    assert_error(answer, 409, "already_paid")


async def test_cancelled_checkout_cannot_be_paid(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    await psp.call("POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth)
    wallet = await psp.wallet(balance=5000)
    assert_error(await psp.pay(wallet, code_of(checkout)), 410, "cancelled")
    assert await psp.balance(wallet) == 5000


# Paying


async def test_payment_moves_the_money_and_the_status(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=1234)
    wallet = await psp.wallet(balance=5000)
    status, payment = await psp.pay(wallet, code_of(checkout))
    assert status == 201
    assert re.fullmatch(r"pay_[0-9a-f]{28}", payment["id"])
    assert payment["checkout_id"] == checkout["id"]
    assert (payment["amount"], payment["currency"], payment["status"]) == (1234, "EUR", "succeeded")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payment["paid_at"])
    assert await psp.balance(wallet) == 5000 - 1234
    assert await psp.storage.merchant_balances(shop.id) == {"EUR": 1234}
    _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert now["status"] == "paid"


async def test_lower_case_code_pays_too(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    assert (await psp.pay(await psp.wallet(), code_of(checkout).lower()))[0] == 201


async def test_second_payment_is_409_and_debits_nothing(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=100)
    first, second = await psp.wallet(balance=1000), await psp.wallet(balance=1000)
    assert (await psp.pay(first, code_of(checkout)))[0] == 201
    assert_error(await psp.pay(second, code_of(checkout)), 409, "already_paid")
    assert_error(await psp.pay(first, code_of(checkout)), 409, "already_paid")
    assert await psp.balance(second) == 1000
    assert await psp.balance(first) == 900
    assert count_rows(psp, "payments") == 1


async def test_insufficient_funds_is_402_and_changes_nothing(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=1000)
    wallet = await psp.wallet(balance=999)
    assert_error(await psp.pay(wallet, code_of(checkout)), 402, "insufficient_funds")
    assert await psp.balance(wallet) == 999
    _, still = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    assert still["status"] == "pending"
    assert count_rows(psp, "payments") == 0


async def test_currency_mismatch_is_422(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=100, currency="EUR")
    wallet = await psp.wallet(currency="JPY", balance=100_000)
    assert_error(await psp.pay(wallet, code_of(checkout)), 422, "currency_mismatch")
    assert count_rows(psp, "payments") == 0


async def test_unknown_code_is_404(psp: Psp) -> None:
    wallet = await psp.wallet()
    assert_error(await psp.pay(wallet, "A" * 32), 404, "unknown_code")
    assert_error(await psp.pay(wallet, "not a code!"), 404, "unknown_code")


async def test_bad_wallet_token_is_401_before_anything_else(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    answer = await psp.call(
        "POST",
        "/v1/payments",
        json={"code": code_of(checkout)},
        headers={"Authorization": "Bearer wt_wrong"},
    )
    assert_error(answer, 401, "unauthorized")
    answer = await psp.call(
        "POST", "/v1/payments", json={"code": code_of(checkout)}, headers=shop.auth
    )  # a merchant key is not a wallet token
    assert_error(answer, 401, "unauthorized")
    assert_error(
        await psp.call("POST", "/v1/payments", json={"code": code_of(checkout)}),
        401,
        "unauthorized",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "missing_field"),
        ({"code": 5}, 422, "invalid_code"),
        ({"code": "X", "amount": 1}, 422, "unknown_field"),
        ([], 400, "invalid_json"),
    ],
)
async def test_bad_payment_bodies(psp: Psp, body: Any, status: int, code: str) -> None:
    wallet = await psp.wallet()
    assert_error(
        await psp.call("POST", "/v1/payments", json=body, headers=wallet.auth), status, code
    )
    assert count_rows(psp, "payments") == 0


async def test_expired_checkout_cannot_be_paid_even_before_the_sweep(tmp_path: Any) -> None:
    from tests.support.psp import start_psp, stop_psp

    # A sweeper that would not come by for an hour: the rule alone must hold.
    psp = await start_psp(str(tmp_path / "slow.db"), sweep_interval=3600)
    try:
        shop = await psp.merchant()
        checkout = await psp.checkout(shop, expires_in=1)
        psp.pass_expiry(checkout)
        wallet = await psp.wallet(balance=5000)
        assert_error(await psp.pay(wallet, code_of(checkout)), 410, "expired")
        assert await psp.balance(wallet) == 5000
        _, now = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
        assert now["status"] == "expired"
        answer = await psp.call("POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth)
        assert_error(answer, 410, "expired")
    finally:
        await stop_psp(psp)


async def test_sweeper_marks_expired_checkouts(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, expires_in=1)
    psp.pass_expiry(checkout)
    db = psp.server.settings.db

    def stored_status() -> str:
        with db_connect(db) as conn:
            (stored,) = conn.execute(
                "SELECT status FROM checkouts WHERE id = ?", (checkout["id"],)
            ).fetchone()
        return str(stored)

    # The sweeper comes by every 50 ms and writes what it found.
    await asyncio.to_thread(wait_until, lambda: stored_status() == "expired", "the sweep")


# The QR URL


async def test_code_lookup_as_json(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop, amount=1500, currency="KWD")
    answer = await psp.call(
        "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"}
    )
    assert answer == (
        200,
        {
            "checkout_id": checkout["id"],
            "merchant": {"id": shop.id, "name": SHOP_NAME},
            "amount": 1500,
            "currency": "KWD",
            "status": "pending",
            "expires_at": checkout["expires_at"],
        },
    )


async def test_code_lookup_follows_the_status(psp: Psp, shop: Merchant) -> None:
    checkout = await psp.checkout(shop)
    await psp.pay(await psp.wallet(), code_of(checkout))
    _, info = await psp.call(
        "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"}
    )
    assert info["status"] == "paid"


async def test_code_lookup_in_a_browser_is_a_page(psp: Psp, shop: Merchant) -> None:
    merchant = await psp.merchant("<script>alert(1)</script>")
    checkout = await psp.checkout(merchant, amount=1234)
    status, page = await psp.call(
        "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "text/html,application/xhtml+xml"}
    )
    assert status == 200
    assert "€12.34" in page
    assert "Waiting for payment" in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


async def test_unknown_code_lookup(psp: Psp) -> None:
    assert_error(
        await psp.call("GET", "/Q/" + "B" * 32, headers={"Accept": "application/json"}),
        404,
        "unknown_code",
    )
    status, page = await psp.call("GET", "/Q/nonsense", headers={"Accept": "text/html"})
    assert status == 404
    assert "Unknown code" in page


# The rest


async def test_healthz(psp: Psp) -> None:
    status, body = await psp.call("GET", "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["mqtt"] == "disabled"


async def test_unknown_route_and_method_answer_in_the_error_form(psp: Psp, shop: Merchant) -> None:
    assert_error(await psp.call("GET", "/v2/nothing"), 404, "not_found")
    assert_error(
        await psp.call("DELETE", "/v1/checkouts", headers=shop.auth), 405, "method_not_allowed"
    )


async def test_access_log_holds_no_secrets(psp: Psp, shop: Merchant, caplog: Any) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    wallet = await psp.wallet()
    checkout = await psp.checkout(shop)
    await psp.call("GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"})
    await psp.pay(wallet, code_of(checkout))
    text = caplog.text
    assert '"route":"/v1/payments"' in text
    assert '"route":"/Q/{code}"' in text
    for secret in (shop.key, wallet.token, code_of(checkout)):
        assert secret not in text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_request_the_http_parser_refuses_gets_its_access_line(
    psp: Psp, caplog: Any
) -> None:
    import logging

    caplog.set_level(logging.INFO)
    host, port = psp.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /Q/\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.0 400 Bad Request")
    writer.close()
    (access,) = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert access.startswith('{"method":"UNKNOWN","route":"(unmatched)","status":400,')
    # Before, the access logger raised on it (aiohttp's match_info asserts).
    assert "Unhandled exception" not in [r.getMessage() for r in caplog.records]


# SQLite's own settings; PostgreSQL's durability is the server's (fsync,
# synchronous_commit), which the test cluster turns off for speed.
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_database_is_wal_with_full_fsync_at_commit(psp: Psp) -> None:
    """A 201 means the row is on disk: WAL, fsynced at every commit."""
    assert isinstance(psp.storage, SqlStorage)
    worker = psp.storage.worker
    mode = await worker.run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0])
    sync = await worker.run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    assert (mode, sync) == ("wal", 2)  # 2 is FULL
