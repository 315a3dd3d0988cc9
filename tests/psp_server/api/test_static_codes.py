"""Static till codes through a real server, on both databases: a merchant
makes, lists and revokes them; a scan of /S/{CODE} shows the till's
checkout, the form for an amount, or "nothing yet"; a typed amount becomes
a checkout of its own at the till, paid as any other; and every refusal
changes nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from psp_server.core.static_codes import STATIC_CHECKOUT_EXPIRES_IN
from psp_server.runtime.config import Rate
from tests.support.errors import assert_error
from tests.support.psp import Merchant, Psp, code_of, count_rows, start_psp, stop_psp
from tests.support.shops import SHOP_NAME

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
OPEN_EUR = {"currency": "EUR", "min": 100, "max": 5000}
# Above what any test here types in a minute: the limits have a test of
# their own (test_typed_amounts_are_rate_limited).
ROOMY = Rate(1000, 60.0)


@pytest.fixture
async def psp(db: str) -> AsyncIterator[Psp]:
    server = await start_psp(
        db, sweep_interval=0.05, rate_static_per_ip=ROOMY, rate_static_per_code=ROOMY
    )
    yield server
    await stop_psp(server)


async def make_code(
    psp: Psp, shop: Merchant, terminal: str = "till-1", **body: Any
) -> dict[str, Any]:
    status, made = await psp.call(
        "POST", f"/v1/terminals/{terminal}/static-codes", json=body, headers=shop.auth
    )
    assert status == 201, made
    return dict(made)


def static_code_of(made: dict[str, Any]) -> str:
    return str(made["url"]).rsplit("/S/", 1)[1]


async def scan(psp: Psp, code: str) -> tuple[int, Any]:
    return await psp.call("GET", f"/S/{code}", headers=JSON)


async def type_amount(psp: Psp, code: str, amount: Any) -> tuple[int, Any]:
    return await psp.call("POST", f"/S/{code}/checkouts", json={"amount": amount})


async def test_a_merchant_makes_lists_and_revokes_codes(psp: Psp, shop: Merchant) -> None:
    made = await make_code(psp, shop, label="Front counter", open_amount=OPEN_EUR)
    assert set(made) == {
        "id",
        "code",
        "url",
        "terminal_id",
        "label",
        "short_id",
        "open_amount",
        "created_at",
        "revoked_at",
    }
    assert re.fullmatch(r"sc_[0-9a-f]{28}", made["id"])
    # 160 random bits, upper-case base32: the URL stays in alphanumeric mode.
    assert re.fullmatch(r"[A-Z2-7]{32}", made["code"])
    assert made["url"] == f"{psp.server.settings.public_url}/S/{made['code']}"
    assert made["url"] == made["url"].upper()
    assert made["short_id"] == made["id"][-6:].upper()
    assert (made["terminal_id"], made["label"], made["open_amount"]) == (
        "till-1",
        "Front counter",
        OPEN_EUR,
    )
    assert made["revoked_at"] is None
    plain = await make_code(psp, shop)
    assert (plain["label"], plain["open_amount"]) == ("till-1", None)
    await make_code(psp, shop, terminal="till-2")

    status, listed = await psp.call("GET", "/v1/terminals/till-1/static-codes", headers=shop.auth)
    assert status == 200
    assert [code["id"] for code in listed["static_codes"]] == [plain["id"], made["id"]]

    status, revoked = await psp.call("DELETE", f"/v1/static-codes/{made['id']}", headers=shop.auth)
    assert status == 200
    assert revoked["revoked_at"] is not None
    again = await psp.call("DELETE", f"/v1/static-codes/{made['id']}", headers=shop.auth)
    assert again == (200, revoked)  # revoking twice keeps the first time


async def test_bad_requests_make_no_code(psp: Psp, shop: Merchant) -> None:
    path = "/v1/terminals/till-1/static-codes"
    for body, code in (
        ({"open_amount": {"currency": "EUR", "min": 500, "max": 100}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 0, "max": 100}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "eur", "min": 1, "max": 100}}, "invalid_open_amount"),
        ({"open_amount": {"currency": "EUR", "min": 1}}, "missing_field"),
        ({"open_amount": "EUR"}, "invalid_open_amount"),
        ({"label": "a\u202eb"}, "invalid_label"),
        ({"label": " "}, "invalid_label"),
        ({"colour": "red"}, "unknown_field"),
    ):
        assert_error(await psp.call("POST", path, json=body, headers=shop.auth), 422, code)
    assert_error(
        await psp.call("POST", "/v1/terminals/till%201/static-codes", json={}, headers=shop.auth),
        422,
        "invalid_terminal_id",
    )
    assert_error(
        await psp.call("GET", "/v1/terminals/till%201/static-codes", headers=shop.auth),
        422,
        "invalid_terminal_id",
    )
    assert_error(await psp.call("POST", path, json={}), 401, "unauthorized")
    assert_error(await psp.call("GET", path), 401, "unauthorized")
    assert_error(await psp.call("DELETE", "/v1/static-codes/sc_1"), 401, "unauthorized")
    assert count_rows(psp, "static_codes") == 0


async def test_another_merchants_codes_are_not_found(psp: Psp, shop: Merchant) -> None:
    other = await psp.merchant("Other Shop")
    made = await make_code(psp, shop)
    status, listed = await psp.call("GET", "/v1/terminals/till-1/static-codes", headers=other.auth)
    assert (status, listed) == (200, {"static_codes": []})
    assert_error(
        await psp.call("DELETE", f"/v1/static-codes/{made['id']}", headers=other.auth),
        404,
        "static_code_not_found",
    )
    assert_error(
        await psp.call("DELETE", "/v1/static-codes/not-an-id", headers=shop.auth),
        404,
        "static_code_not_found",
    )
    _, still = await scan(psp, static_code_of(made))
    assert still["checkout"] is None  # not revoked


async def test_a_scan_shows_the_tills_pending_checkout(psp: Psp, shop: Merchant) -> None:
    made = await make_code(psp, shop, label="Till 1")
    code = static_code_of(made)
    status, empty = await scan(psp, code)
    assert status == 200
    assert empty == {
        "merchant": {"name": SHOP_NAME},
        "terminal": {"id": "till-1", "label": "Till 1"},
        "short_id": made["short_id"],
        "checkout": None,
        "open_amount": None,
    }
    await psp.checkout(shop, order_id="other-till", terminal_id="till-2")
    checkout = await psp.checkout(shop, order_id="A-1", terminal_id="till-1", amount=850)
    _, shown = await scan(psp, code)
    assert shown["checkout"]["id"] == checkout["id"]
    assert shown["checkout"]["code"] == code_of(checkout)  # the same payment as its QR
    assert shown["checkout"]["status"] == "pending"
    assert "source" not in shown["checkout"]

    wallet = await psp.wallet()
    assert (await psp.pay(wallet, shown["checkout"]["code"]))[0] == 201
    _, after = await scan(psp, code)
    assert after["checkout"] is None


async def test_typed_amounts_make_checkouts_of_their_own(psp: Psp, shop: Merchant) -> None:
    made = await make_code(psp, shop, open_amount=OPEN_EUR)
    code = static_code_of(made)
    _, view = await scan(psp, code)
    assert (view["checkout"], view["open_amount"]) == (None, OPEN_EUR)

    status, first = await type_amount(psp, code, 1250)
    assert status == 201
    assert (first["amount"], first["currency"], first["terminal_id"]) == (1250, "EUR", "till-1")
    assert (first["source"], first["static_code_id"]) == ("static", made["id"])
    assert first["status"] == "pending"
    assert first["code"] == code_of(first)
    assert first["order_id"] == f"static-{first['id']}"
    # A second customer at the same sticker gets a form, and a checkout of
    # their own, never the first one's.
    _, second_view = await scan(psp, code)
    assert (second_view["checkout"], second_view["open_amount"]) == (None, OPEN_EUR)
    _, second = await type_amount(psp, code, 300)
    assert second["id"] != first["id"]
    assert second["code"] != first["code"]

    wallet = await psp.wallet()
    status, paid = await psp.pay(wallet, first["code"])
    assert status == 201
    assert paid["amount"] == 1250
    _, read = await psp.call("GET", f"/v1/checkouts/{first['id']}", headers=shop.auth)
    assert (read["status"], read["source"], read["static_code_id"]) == (
        "paid",
        "static",
        made["id"],
    )
    psp.clock.advance(STATIC_CHECKOUT_EXPIRES_IN * 1000)
    _, lapsed = await psp.call("GET", f"/Q/{second['code']}", headers=JSON)
    assert lapsed["status"] == "expired"


async def test_concurrent_scanners_get_separate_checkouts(psp: Psp, shop: Merchant) -> None:
    code = static_code_of(await make_code(psp, shop, open_amount=OPEN_EUR))
    answers = await asyncio.gather(*(type_amount(psp, code, 100 + n) for n in range(8)))
    assert [status for status, _ in answers] == [201] * 8
    assert len({body["id"] for _, body in answers}) == 8
    assert len({body["code"] for _, body in answers}) == 8
    assert sorted(body["amount"] for _, body in answers) == list(range(100, 108))


async def test_refused_amounts_change_nothing(psp: Psp, shop: Merchant) -> None:
    code = static_code_of(await make_code(psp, shop, open_amount=OPEN_EUR))
    before = count_rows(psp, "checkouts")
    for amount in (99, 5001, 0, -5, 12.5, "1250", True, None):
        assert_error(await type_amount(psp, code, amount), 422, "amount_out_of_range")
    assert_error(
        await psp.call("POST", f"/S/{code}/checkouts", json={"amount": 100, "tip": 1}),
        422,
        "unknown_field",
    )
    assert_error(
        await psp.call("POST", f"/S/{code}/checkouts", data=b"{", headers=JSON),
        400,
        "invalid_json",
    )
    fixed = static_code_of(await make_code(psp, shop, terminal="till-2"))
    events = count_rows(psp, "events")
    assert_error(await type_amount(psp, fixed, 500), 409, "open_amount_not_allowed")
    assert count_rows(psp, "checkouts") == before
    assert count_rows(psp, "events") == events


async def test_a_tills_checkout_comes_before_a_typed_amount(psp: Psp, shop: Merchant) -> None:
    code = static_code_of(await make_code(psp, shop, open_amount=OPEN_EUR))
    rung_up = await psp.checkout(shop, terminal_id="till-1")
    assert_error(await type_amount(psp, code, 500), 409, "till_has_checkout")
    _, view = await scan(psp, code)
    assert view["checkout"]["id"] == rung_up["id"]
    assert view["open_amount"] is None
    assert count_rows(psp, "checkouts") == 1


async def test_revoked_and_unknown_codes(psp: Psp, shop: Merchant) -> None:
    made = await make_code(psp, shop, open_amount=OPEN_EUR)
    code = static_code_of(made)
    await psp.call("DELETE", f"/v1/static-codes/{made['id']}", headers=shop.auth)
    assert_error(await scan(psp, code), 410, "static_code_revoked")
    assert_error(await type_amount(psp, code, 500), 410, "static_code_revoked")
    status, page = await psp.call("GET", f"/S/{code}", headers=HTML)
    assert status == 410
    assert "no longer valid" in page
    assert SHOP_NAME in page
    assert made["short_id"] in page

    unknown = "A" * 32
    assert_error(await scan(psp, unknown), 404, "static_code_not_found")
    assert_error(await scan(psp, "not-a-code"), 404, "static_code_not_found")
    assert_error(await type_amount(psp, unknown, 500), 404, "static_code_not_found")
    status, page = await psp.call("GET", f"/S/{unknown}", headers=HTML)
    assert status == 404
    assert "does not exist" in page
    assert count_rows(psp, "checkouts") == 0


async def test_pages_name_the_merchant_and_the_till(psp: Psp, shop: Merchant) -> None:
    fixed = await make_code(psp, shop, label="Bar <1>")
    status, waiting = await psp.call("GET", f"/S/{static_code_of(fixed)}", headers=HTML)
    assert status == 200
    assert "Nothing to pay at this till yet" in waiting
    assert "waiting.js" in waiting
    assert "Bar &lt;1&gt;" in waiting
    assert fixed["short_id"] in waiting
    assert SHOP_NAME in waiting

    await psp.checkout(shop, terminal_id="till-1", amount=850)
    status, paying = await psp.call("GET", f"/S/{static_code_of(fixed)}", headers=HTML)
    assert status == 200
    assert "8.50" in paying
    assert 'id="pay"' in paying
    assert fixed["short_id"] in paying

    typed = await make_code(psp, shop, terminal="till-2", open_amount=OPEN_EUR)
    status, form = await psp.call("GET", f"/S/{static_code_of(typed)}", headers=HTML)
    assert status == 200
    assert 'id="amount-form"' in form
    assert "€1.00" in form
    assert "€50.00" in form


async def test_the_form_posts_and_goes_on_to_the_payment_page(psp: Psp, shop: Merchant) -> None:
    code = static_code_of(await make_code(psp, shop, open_amount=OPEN_EUR))
    async with psp.http.post(
        f"{psp.url}/S/{code}/checkouts",
        data={"amount": "12.50"},
        headers=HTML,
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        location = response.headers["Location"]
    assert re.fullmatch(r"\.\./\.\./Q/[A-Z2-7]{32}", location)
    _, found = await psp.call("GET", f"/Q/{location.rsplit('/', 1)[1]}", headers=JSON)
    assert (found["amount"], found["status"]) == (1250, "pending")

    async with psp.http.post(
        f"{psp.url}/S/{code}/checkouts", data={"amount": "99"}, headers=HTML
    ) as response:
        assert response.status == 422
        page = await response.text()
    assert 'role="alert"' in page
    assert 'action="checkouts"' in page
    assert count_rows(psp, "checkouts") == 1

    # A form from a client that asks for no page is answered as JSON is.
    async with psp.http.post(
        f"{psp.url}/S/{code}/checkouts", data={"amount": "7.25"}, headers=JSON
    ) as response:
        assert response.status == 201
        assert (await response.json())["amount"] == 725
    async with psp.http.post(
        f"{psp.url}/S/{code}/checkouts", data={"amount": "seven"}, headers=JSON
    ) as response:
        assert response.status == 422
        assert (await response.json())["error"]["code"] == "invalid_amount"
    assert count_rows(psp, "checkouts") == 2


async def test_typed_amounts_are_rate_limited_per_code_and_per_address(db: str) -> None:
    limited = await start_psp(
        db, rate_static_per_ip=Rate(6, 600.0), rate_static_per_code=Rate(3, 600.0)
    )
    try:
        shop = await limited.merchant()
        first = static_code_of(await make_code(limited, shop, open_amount=OPEN_EUR))
        second = static_code_of(await make_code(limited, shop, open_amount=OPEN_EUR))
        for _ in range(2):
            assert (await type_amount(limited, first, 500))[0] == 201
        # A refusal costs a try too: guessing amounts is not free.
        assert_error(await type_amount(limited, first, 1), 422, "amount_out_of_range")
        status, body = await type_amount(limited, first, 500)
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        # The other code has its own bucket, until the address runs out.
        for _ in range(2):
            assert (await type_amount(limited, second, 500))[0] == 201
        status, body = await type_amount(limited, second, 500)
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert count_rows(limited, "checkouts") == 4
        # The scan itself stays open.
        assert (await scan(limited, first))[0] == 200
    finally:
        await stop_psp(limited)


async def test_a_sticker_in_no_format_of_ours_is_not_found(psp: Psp, shop: Merchant) -> None:
    made = await make_code(psp, shop)
    for fmt in ("AAA", "jpg", "PNG"):
        assert_error(
            await psp.call(
                "GET", f"/v1/static-codes/{made['id']}/sticker.{fmt}", headers=shop.auth
            ),
            404,
            "static_code_not_found",
        )


async def test_stickers_carry_the_code_and_read_back(psp: Psp, shop: Merchant) -> None:
    import io
    import xml.etree.ElementTree as ET

    from PIL import Image

    from psp_server.stickers import Sticker, render_sticker
    from tests.support.qr_decode import decode_both, pdf_to_image

    made = await make_code(psp, shop, label="Counter 1")
    path = f"/v1/static-codes/{made['id']}/sticker"
    async with psp.http.get(f"{psp.url}{path}.png", headers=shop.auth) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        png = await response.read()
    assert decode_both(Image.open(io.BytesIO(png))) == made["url"]
    async with psp.http.get(f"{psp.url}{path}.pdf", headers=shop.auth) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        pdf = await response.read()
    assert decode_both(pdf_to_image(pdf, dpi=300)) == made["url"]
    async with psp.http.get(f"{psp.url}{path}.svg", headers=shop.auth) as response:
        assert response.headers["Content-Type"] == "image/svg+xml"
        svg = await response.read()
    # The renderer's own tests read its SVG's QR back; this one is that
    # renderer's drawing of this very code, its merchant and till.
    expected = Sticker(made["url"], SHOP_NAME, "Counter 1", made["short_id"])
    assert svg == render_sticker(expected, "svg")
    texts = [el.text for el in ET.fromstring(svg).iter() if el.text and el.text.strip()]  # noqa: S314 - our own output
    assert SHOP_NAME in texts
    assert made["short_id"] in " ".join(texts)

    async with psp.http.get(f"{psp.url}{path}.gif", headers=shop.auth) as response:
        assert response.status == 404  # no such format, no such route


async def test_an_emv_merchants_code_and_its_stickers_carry_the_static_payload(
    psp: Psp, shop: Merchant
) -> None:
    import io

    from brcode.utils.brcodeId import jsonFromBrcode  # Stark Bank's BR Code parser
    from PIL import Image

    from psp_server.stickers import Sticker, render_sticker
    from scan2pay_common.emv import parse_payload
    from tests.support.qr_decode import decode_both, pdf_to_image

    plain = await make_code(psp, shop, label="Counter 1", open_amount=OPEN_EUR)
    assert "qr_payload" not in plain  # a url merchant's codes are bare URLs
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
    status, _ = await psp.call("PATCH", "/v1/merchant", json=settings, headers=shop.auth)
    assert status == 200
    made = await make_code(psp, shop, label="Counter 1", open_amount=OPEN_EUR)
    payload = made["qr_payload"]
    fields = jsonFromBrcode(payload)
    assert (fields["00"], fields["01"]) == ("01", "11")  # a static code
    assert "54" not in fields  # no amount: the customer types it
    assert fields["26"] == {"00": "org.scan2pay", "01": made["url"]}
    assert [fields[tag] for tag in ("52", "53", "58", "60")] == ["5814", "978", "DE", "Berlin"]
    assert fields["62"]["07"] == "till-1"
    assert parse_payload(payload).url() == made["url"]
    # The listing answers the same payload; the code made before the switch
    # gets its own now, as its sticker does.
    status, listed = await psp.call("GET", "/v1/terminals/till-1/static-codes", headers=shop.auth)
    assert status == 200
    by_id = {code["id"]: code for code in listed["static_codes"]}
    assert by_id[made["id"]]["qr_payload"] == payload
    assert parse_payload(by_id[plain["id"]]["qr_payload"]).url() == plain["url"]
    # A code without typed amounts names no currency, which a payload must:
    # it stays a bare URL.
    bare = await make_code(psp, shop, label="Counter 1")
    assert "qr_payload" not in bare

    path = f"/v1/static-codes/{made['id']}/sticker"
    async with psp.http.get(f"{psp.url}{path}.png", headers=shop.auth) as response:
        assert response.status == 200
        png = await response.read()
    assert decode_both(Image.open(io.BytesIO(png))) == payload
    async with psp.http.get(f"{psp.url}{path}.pdf", headers=shop.auth) as response:
        assert response.status == 200
        pdf = await response.read()
    assert decode_both(pdf_to_image(pdf, dpi=300)) == payload
    async with psp.http.get(f"{psp.url}{path}.svg", headers=shop.auth) as response:
        assert response.status == 200
        svg = await response.read()
    # The renderer's own tests read an EMV sticker's SVG back in Chromium;
    # this one is that renderer's drawing of this code's payload.
    expected = Sticker(made["url"], SHOP_NAME, "Counter 1", made["short_id"], payload=payload)
    assert svg == render_sticker(expected, "svg")
    async with psp.http.get(f"{psp.url}/v1/static-codes/{bare['id']}/sticker.png",
                            headers=shop.auth) as response:  # fmt: skip
        assert decode_both(Image.open(io.BytesIO(await response.read()))) == bare["url"]


async def test_a_typed_checkout_is_announced_signed_for_its_till_and_a_cashiers_is_not(
    psp: Psp, shop: Merchant
) -> None:
    from scan2pay_common.signing import verify

    async def events() -> list[dict[str, Any]]:
        status, page = await psp.call("GET", "/v1/events?limit=1000", headers=shop.auth)
        assert status == 200, page
        return list(page["events"])

    made = await make_code(psp, shop, open_amount=OPEN_EUR)
    status, cashiers = await psp.call(
        "POST",
        "/v1/checkouts",
        json={"order_id": "A-1", "amount": 700, "currency": "EUR", "terminal_id": "till-2"},
        headers=shop.auth,
    )
    assert status == 201, cashiers
    assert await events() == []  # a cashier's checkout goes to its terminal in show_qr
    _, typed = await type_amount(psp, static_code_of(made), 1250)
    (created,) = await events()
    assert created["type"] == "checkout.created"
    assert created["checkout"] == {
        key: typed[key]
        for key in (
            "id", "order_id", "amount", "currency", "status", "qr_url", "expires_at",
            "terminal_id", "created_at", "description", "refunded_amount", "source",
            "static_code_id",
        )
    }  # fmt: skip
    assert (created["checkout"]["status"], created["checkout"]["terminal_id"]) == (
        "pending",
        "till-1",
    )
    assert verify(created, [psp.storage.signing_key.public])
    wallet = await psp.wallet()
    assert (await psp.pay(wallet, typed["code"]))[0] == 201
    kinds = [(e["seq"], e["type"]) for e in await events()]
    assert kinds == [(1, "checkout.created"), (2, "checkout.paid")]
