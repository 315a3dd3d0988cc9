"""No secret reaches a log: a whole flow (merchant, wallet, webhook, the
cashier bridge's checkout shown on a terminal, the QR lookup, the payment,
events over a real mosquitto, webhook deliveries) with every logger at
DEBUG, the server's access log included, then every record searched for
every secret in every form it travels in."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cashier_bridge.flow import run_checkout
from cashier_bridge.model import CheckoutOrder
from psp_server.core.credentials import hash_secret
from psp_server.runtime.config import parse_networks
from tests.support.bridge import TERMINAL, Steps, bridge_config, code_of_url, running_terminal
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.polling import until
from tests.support.psp import Psp, start_psp, stop_psp
from tests.support.secret_forms import secret_forms

pytestmark = pytest.mark.broker

MQTT_USER = "scan2pay-psp"
MQTT_PASSWORD = "mqtt-pw-Zq8vN3xL0pR7"  # noqa: S105 - made up; the broker allows anyone, the PSP still sends it


class Hooks:
    """A webhook endpoint that takes every delivery."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.arrived.set()
        return web.Response(status=204)


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[Hooks, str]]:
    receiver = Hooks()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield receiver, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture
async def psp_with_password(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[Psp]:
    url = f"mqtt://{MQTT_USER}:{MQTT_PASSWORD}@127.0.0.1:{broker.port}"
    server = await start_psp(
        str(tmp_path / "psp.db"),
        mqtt_url=url,
        sweep_interval=0.05,
        webhook_retry_base=0.05,
        webhook_allow_networks=parse_networks("127.0.0.0/8"),  # the hook is on loopback
    )
    yield server
    await stop_psp(server)


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), record.name, str(record.__dict__)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_no_secret_appears_in_any_log_record(
    caplog: pytest.LogCaptureFixture,
    broker: Mosquitto,
    psp_with_password: Psp,
    hooks: tuple[Hooks, str],
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: every logger, aiohttp.access too
    for name in ("psp_server", "psp_server.access", "aiohttp", "cashier_bridge", "terminal"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    psp = psp_with_password
    receiver, hook_url = hooks
    merchant, wallet = await psp.merchant("Log Shop"), await psp.wallet(balance=100_000)
    events = Subscriber(broker.port, f"scan2pay/v1/m/{merchant.id}/events")

    status, webhook = await psp.call(
        "POST", "/v1/webhooks", json={"url": hook_url}, headers=merchant.auth
    )
    assert status == 201, webhook
    secrets: dict[str, Any] = {
        "merchant key": merchant.key,
        "wallet token": wallet.token,
        "webhook secret": webhook["secret"],
        "MQTT password": MQTT_PASSWORD,
    }
    signing_key = getattr(psp.storage, "signing_key", None)
    if signing_key is not None and hasattr(signing_key, "private_bytes"):
        secrets["PSP private key"] = signing_key.private_bytes()

    # The cashier bridge's checkout, shown on a terminal, paid by the wallet
    # after it looked the code up as a phone would.
    steps = Steps()

    async def pay_once_shown() -> None:
        await steps.wait_for("shown")
        code = code_of_url(steps.first("created").data["qr_url"])
        for accept in ("text/html", "application/json"):
            status, _ = await psp.call("GET", f"/Q/{code}", headers={"Accept": accept})
            assert status == 200
        assert (await psp.pay(wallet, code))[0] == 201
        # Refused and unauthorised calls log too.
        assert (await psp.pay(wallet, code))[0] == 409
        bad = {"Authorization": f"Bearer {wallet.token}x"}
        assert (await psp.call("GET", "/v1/merchant", headers=bad))[0] == 401

    order = CheckoutOrder(order_id="LOG-1", amount=1234, currency="EUR", terminal_id=TERMINAL)
    async with running_terminal(broker, merchant.id) as terminal:
        payer = asyncio.create_task(pay_once_shown())
        config = bridge_config(
            psp, merchant, f"mqtt://bridge:{MQTT_PASSWORD}@127.0.0.1:{broker.port}"
        )
        result = await run_checkout(config, order, steps.add)
        await payer
        await terminal.until_screen("paid", result.checkout_id)
    assert result.outcome == "paid"

    # A plain API checkout and a refund, then the events: over MQTT, the
    # events API and the webhook.
    checkout = await psp.checkout(merchant, order_id="LOG-2")
    assert (await psp.pay(wallet, code_of_url(checkout["qr_url"])))[0] == 201
    refund = await psp.call(
        "POST",
        f"/v1/checkouts/{checkout['id']}/refunds",
        json={"amount": 100},
        headers={**merchant.auth, "Idempotency-Key": "log-refund-1"},
    )
    assert refund[0] == 201, refund
    assert (await psp.call("GET", "/v1/events", headers=merchant.auth))[0] == 200
    published = await asyncio.to_thread(events.wait_for, 3)
    events.close()
    assert len(published) >= 3
    await until(lambda: len(receiver.bodies) >= 3, what="three webhook deliveries", every=0.05)
    status, deliveries = await psp.call(
        "GET", f"/v1/webhooks/{webhook['id']}/deliveries", headers=merchant.auth
    )
    assert status == 200, deliveries

    records = caplog.records
    access = [r for r in records if r.name in ("aiohttp.access", "psp_server.access")]
    assert any('"route":"/Q/{code}"' in r.getMessage() for r in access), "no access log"
    assert len(records) > 20
    leaks = [
        f"{what} in {record.name}: {_record_text(record)[:300]!r}"
        for record in records
        for what, secret in secrets.items()
        for form in secret_forms(secret)
        if form in _record_text(record)
    ]
    assert not leaks, "\n".join(leaks[:20])


def test_the_search_finds_a_secret_in_any_of_itssecret_forms() -> None:
    """The check above can fail: a secret logged whole, hashed, encoded, in
    part or in a traceback is found."""
    token = "wt_AbCdEfGhIjKlMnOpQrStUvWxYz012345"  # noqa: S105 - made up, for the check to find
    for message, args in [
        ("token %s", (token,)),
        ("hash %s", (hash_secret(token),)),
        ("part %s", (token[5:20],)),
        ("b64 %s", (base64.b64encode(token.encode()).decode(),)),
    ]:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)
        assert any(form in _record_text(record) for form in secret_forms(token)), message
    clean = logging.LogRecord("x", logging.INFO, __file__, 1, "nothing %s", ("here",), None)
    assert not any(form in _record_text(clean) for form in secret_forms(token))
