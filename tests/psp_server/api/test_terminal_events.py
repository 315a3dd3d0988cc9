"""``GET /v1/events`` with a paired terminal's own credential, ``Bearer
PAIRING_ID:DEVICE_SECRET`` (psp_server/pairing/credential.py): the events
of that terminal's checkouts alone, and a 401 for a wrong secret, a pairing
not yet collected, an unpaired terminal, or another terminal's pairing
with this one's secret. A PSP in this process, paired as the terminal
pairs (start, approve, collect), its broker folder a temporary one."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.api.appkeys import PAIRING
from scan2pay_common.mqtt_url import MqttTarget
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    server = await start_psp(
        str(tmp_path / "psp.db"),
        terminal_mqtt=MqttTarget.parse("mqtts://127.0.0.1:8883"),
        mosquitto_dir=folder,
    )
    yield server
    await stop_psp(server)


async def _pair(psp: Psp, merchant: Merchant, terminal_id: str, *, collect: bool = True) -> str:
    """A terminal paired as pairing does it; its credential."""
    secret = secrets.token_urlsafe(32)
    secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    status, started = await psp.call(
        "POST", "/v1/pairings", json={"device_secret_hash": secret_hash}
    )
    assert status == 201, started
    await psp.server.app[PAIRING].approve(started["code"], merchant.id, terminal_id)
    if collect:
        status, body = await psp.call(
            "POST",
            f"/v1/pairings/{started['pairing_id']}/poll",
            json={"device_secret": secret},
        )
        assert (status, body["status"]) == (200, "approved"), body
    return f"{started['pairing_id']}:{secret}"


async def _events(psp: Psp, token: str, after: int = 0) -> tuple[int, Any]:
    return await psp.call(
        "GET", f"/v1/events?after={after}", headers={"Authorization": f"Bearer {token}"}
    )


async def _sold(psp: Psp, merchant: Merchant, order: str, **fields: Any) -> dict[str, Any]:
    checkout = await psp.checkout(merchant, order_id=order, **fields)
    wallet = await psp.wallet()
    status, paid = await psp.pay(wallet, code_of(checkout))
    assert status == 201, paid
    return checkout


async def test_a_terminal_reads_the_events_of_its_own_checkouts_and_nothing_else(
    psp: Psp,
) -> None:
    shop, other_shop = await psp.merchant("Shop"), await psp.merchant("Other")
    lane1 = await _pair(psp, shop, "lane-1")
    await _pair(psp, other_shop, "lane-1")  # the same lane's name at another shop
    mine = await _sold(psp, shop, "O-1", terminal_id="lane-1")
    await _sold(psp, shop, "O-2", terminal_id="lane-2")
    await _sold(psp, shop, "O-3")  # made for no terminal
    await _sold(psp, other_shop, "O-4", terminal_id="lane-1")

    status, page = await _events(psp, lane1)
    assert status == 200, page
    seen = [(e["type"], e["checkout"]["id"]) for e in page["events"]]
    assert seen == [("checkout.paid", mine["id"])]
    # Signed as published, and the cursor is the merchant's seq.
    assert all(e["signature"]["alg"] == "Ed25519" for e in page["events"])
    assert page["next_after"] == page["events"][-1]["seq"]
    status, rest = await _events(psp, lane1, after=page["next_after"])
    assert (status, rest["events"], rest["next_after"]) == (200, [], page["next_after"])
    # The merchant's key still reads every one of its events.
    status, everything = await psp.call("GET", "/v1/events", headers=shop.auth)
    assert status == 200
    assert len(everything["events"]) == 3


async def test_a_wrong_uncollected_or_unpaired_credential_reads_nothing(psp: Psp) -> None:
    shop = await psp.merchant("Shop")
    lane1 = await _pair(psp, shop, "lane-1")
    lane2 = await _pair(psp, shop, "lane-2")
    waiting = await _pair(psp, shop, "lane-3", collect=False)
    await _sold(psp, shop, "O-1", terminal_id="lane-1")
    pairing1, _, secret1 = lane1.partition(":")
    pairing2, _, secret2 = lane2.partition(":")
    changed = secret1[:-1] + ("A" if secret1[-1] != "A" else "B")
    cases = {
        "a changed secret": f"{pairing1}:{changed}",
        "another terminal's secret": f"{pairing1}:{secret2}",
        "its secret with another pairing": f"{pairing2}:{secret1}",
        "an unknown pairing": f"pair_{'0' * 32}:{secret1}",
        "a secret of the wrong shape": f"{pairing1}:short",
        "no secret": f"{pairing1}:",
        "settings not collected yet": waiting,
    }
    for what, token in cases.items():
        status, body = await _events(psp, token)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), what
    await psp.server.app[PAIRING].unpair(shop.id, "lane-1")
    status, body = await _events(psp, lane1)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = await _events(psp, lane2)
    assert status == 200, body
