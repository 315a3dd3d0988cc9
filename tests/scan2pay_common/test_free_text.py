"""One rule for every free-text field people will read (descriptions,
names): any script, emoji and marks; nothing that changes how the rest is
drawn or read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.free_text import check_free_text, text_problem
from tests.support.db import connect
from tests.support.process import run_cli
from tests.support.psp import Psp

ALLOWED = [
    "2 coffees",
    "Café crème, 北京烤鸭, مرحبا, नमस्ते",
    "👍🏽 family: 👨‍👩‍👧",  # emoji modifiers and zero-width joiners
    "\u200e\u200f",  # left-to-right and right-to-left marks: marks, not overrides
    "",
]
REFUSED = {
    "NUL": "a\x00b",
    "newline": "a\nb",
    "carriage return": "a\rb",
    "escape (ANSI)": "\x1b[31mred",
    "DEL": "a\x7fb",
    "C1 next line": "a\x85b",
    "C1 CSI": "a\x9bb",
    "line separator": "a\u2028b",
    "paragraph separator": "a\u2029b",
    "right-to-left override": "abc\u202edcba",
    "left-to-right embedding": "\u202aabc",
    "pop directional formatting": "abc\u202c",
    "first strong isolate": "\u2068abc",
    "pop directional isolate": "abc\u2069",
    "noncharacter FDD0": "a\ufdd0",
    "noncharacter FFFE": "a\ufffe",
    "noncharacter plane 16": "a\U0010ffff",
    "lone surrogate": "a\ud867",
}


@pytest.mark.parametrize("text", ALLOWED)
def test_text_people_write_is_allowed(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize(("what", "text"), REFUSED.items())
def test_what_changes_how_text_is_shown_is_refused(what: str, text: str) -> None:
    problem = text_problem(text)
    assert problem is not None, what
    with pytest.raises(InvalidValue) as caught:
        check_free_text(text, field="description", code="invalid_description", maximum=200)
    assert caught.value.code == "invalid_description"
    assert "description must be plain text: U+" in caught.value.message


@pytest.mark.parametrize(("what", "text"), REFUSED.items())
async def test_the_api_refuses_such_a_description_and_creates_nothing(
    psp: Psp, what: str, text: str
) -> None:
    merchant = await psp.merchant()
    status, answer = await psp.call(
        "POST",
        "/v1/checkouts",
        json={"order_id": "T-1", "amount": 100, "currency": "EUR", "description": text},
        headers=merchant.auth,
    )
    assert status == 422, what
    assert answer["error"]["code"] == "invalid_description"
    good = await psp.checkout(merchant, order_id="T-1", description=ALLOWED[1])
    assert good["description"] == ALLOWED[1]  # the order id was still free


async def test_a_checkout_stored_before_the_rule_still_expires_and_shows(db: str, psp: Psp) -> None:
    """The rule guards what comes in, not the PSP's own rows: a description
    stored by an older PSP (which refused only characters below U+0020)
    must not stop the sweeper or make the checkout a 500."""
    merchant = await psp.merchant()
    made = await psp.checkout(merchant, order_id="OLD-1", expires_in=60)
    older = "older\u2028text\u202e"
    with connect(db) as conn:
        conn.execute(
            "UPDATE checkouts SET description = ?, expires_at = 1 WHERE id = ?",
            (older, made["id"]),
        )
    deadline = time.monotonic() + 10
    while True:
        status, shown = await psp.call("GET", f"/v1/checkouts/{made['id']}", headers=merchant.auth)
        assert status == 200, shown
        assert shown["description"] == older
        if shown["status"] == "expired":
            break
        assert time.monotonic() < deadline, shown
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("name", ["Shop\u202eevil", "Shop\nINFO forged", "Shop\x1b[2J"])
def test_a_merchant_name_that_breaks_the_rule_is_refused(name: str, tmp_path: Path) -> None:
    result = run_cli("merchant", "create", "--name", name, "--db", str(tmp_path / "psp.db"))
    assert result.returncode == 2, result.stdout
    assert "--name must be plain text" in result.stderr
