"""Signed messages, against real parts: the PSP signs its events and display
tickets, and a terminal holding the PSP's key believes nothing else. A rogue
MQTT client can neither put its own QR on the screen nor fake "paid"."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from cashier_bridge.flow import run_checkout
from cashier_bridge.model import CheckoutOrder
from cashier_bridge.psp_keys import PspKeys
from cashier_bridge.terminal_link import BrokerLink
from scan2pay_common.messages import CheckoutEvent, parse_display_command
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import PublicKey, SigningKey, parse_public_keys, verify_json
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import display_topic, events_topic, terminal_events_topic
from terminal import daemon as terminal_daemon
from terminal import psp_lookup
from terminal.controller import CodeInfo
from terminal.screens import QrScreen
from tests.support.bridge import (
    TERMINAL,
    Steps,
    Terminal,
    bridge_config,
    code_of_url,
    running_terminal,
)
from tests.support.broker import Mosquitto
from tests.support.commands import show_qr_of
from tests.support.mqtt import Subscriber, publish
from tests.support.polling import until
from tests.support.process import run_cli
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp

EVIL_URL = "HTTP://EVIL.EXAMPLE/Q/" + "A" * 32


async def psp_keys(psp: Psp) -> tuple[PublicKey, ...]:
    status, body = await psp.call("GET", "/v1/keys")
    assert status == 200, body
    return parse_public_keys([key["public_key"] for key in body["keys"]])


def forged_event(checkout: dict[str, Any], merchant_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": "evt_forged",
        "seq": 99,
        "type": "checkout.paid",
        "merchant_id": merchant_id,
        "checkout": {**checkout, "status": "paid"},
        "created_at": to_rfc3339(now_ms()),
        **changes,
    }


def warnings_with(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def until_logged(
    caplog: pytest.LogCaptureFixture, text: str, count: int, timeout: float = 10.0
) -> list[str]:
    def logged() -> list[str] | None:
        found = warnings_with(caplog, text)
        return found if len(found) >= count else None

    return await until(logged, what=f"{count} warnings with {text!r}", timeout=timeout)


def assert_showing(terminal: Terminal, checkout: dict[str, Any]) -> None:
    screen = terminal.daemon.controller.view.screen
    assert isinstance(screen, QrScreen), screen
    assert (screen.checkout_id, screen.qr_url) == (checkout["id"], checkout["qr_url"])
    state = terminal.daemon.state
    assert state is not None
    assert (state.screen, state.checkout_id) == ("qr", checkout["id"])
    frame = terminal.display.last
    assert frame is not None
    assert frame.content.qr_url == checkout["qr_url"]


async def keyed_terminal(psp: Psp, broker: Mosquitto, merchant: Merchant) -> Any:
    return running_terminal(
        broker,
        merchant.id,
        psp_public_keys=await psp_keys(psp),
        psp_url=psp.server.settings.public_url,
    )


async def test_a_rogue_show_qr_does_not_change_the_screen(
    psp: Psp, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="terminal.daemon")
    shop = await psp.merchant()
    topic = display_topic(shop.id, TERMINAL)
    genuine = await psp.checkout(shop, order_id="G-1", terminal_id=TERMINAL)
    second = await psp.checkout(shop, order_id="S-1", terminal_id=TERMINAL)
    other_lane = await psp.checkout(shop, order_id="O-1", terminal_id="lane-9")
    # Another merchant's genuine ticket for its own terminal of the same name.
    other_shop = await psp.merchant("Other Shop")
    other_merchant = await psp.checkout(other_shop, order_id="M-1", terminal_id=TERMINAL)
    past = to_rfc3339(now_ms() - 1000)
    # Signed with the PSP's real key, but expired: only the PSP can make one.
    expired = psp.storage.signing_key.sign({**second["display_ticket"], "expires_at": past})
    attacker = SigningKey.generate()
    ticket = second["display_ticket"]
    rogue = [
        (
            "unsigned, the attacker's QR",
            show_qr_of(second, qr_url=EVIL_URL, display_ticket=None),
            "has no display ticket",
        ),
        ("another terminal's ticket", show_qr_of(other_lane), "for terminal 'lane-9'"),
        (
            "another merchant's ticket for a terminal of the same name",
            show_qr_of(other_merchant),
            f"merchant {other_shop.id}'s",
        ),
        (
            "an expired ticket",
            show_qr_of(second, expires_at=past, display_ticket=expired),
            "has expired",
        ),
        ("a changed qr_url", show_qr_of(second, qr_url=EVIL_URL), "qr_url is not"),
        ("a changed amount", show_qr_of(second, amount=1), "amount is not"),
        ("a changed checkout", show_qr_of(second, checkout_id="co_evil"), "checkout_id is not"),
        (
            "a ticket changed to match",
            show_qr_of(second, qr_url=EVIL_URL, display_ticket={**ticket, "qr_url": EVIL_URL}),
            "not signed by the PSP",
        ),
        (
            "a ticket signed by another key",
            show_qr_of(
                second,
                qr_url=EVIL_URL,
                display_ticket=attacker.sign({**ticket, "qr_url": EVIL_URL}),
            ),
            "not signed by the PSP",
        ),
    ]
    async with await keyed_terminal(psp, broker, shop) as terminal:
        await asyncio.to_thread(publish, broker.port, topic, show_qr_of(genuine))
        await terminal.until_screen("qr", genuine["id"])
        for n, (what, payload, reason) in enumerate(rogue, start=1):
            await asyncio.to_thread(publish, broker.port, topic, payload)
            found = await until_logged(caplog, "ignored a show_qr", n)
            assert reason in found[-1], (what, found[-1])
            assert_showing(terminal, genuine)
        # The same terminal does show a genuine command with its ticket.
        await asyncio.to_thread(publish, broker.port, topic, show_qr_of(second))
        await terminal.until_screen("qr", second["id"])
        assert_showing(terminal, second)


async def test_a_forged_paid_does_not_show_paid(
    psp_with_broker: Psp,
    broker: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger="terminal.daemon")
    psp = psp_with_broker
    shop = await psp.merchant()
    checkout = await psp.checkout(shop, terminal_id=TERMINAL)
    _, snapshot = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    attacker = SigningKey.generate()
    unsigned = forged_event(snapshot, shop.id)
    forged = [
        json.dumps(unsigned).encode(),
        json.dumps(attacker.sign(unsigned)).encode(),
        # A real signature made for something else, put on this event.
        json.dumps({**unsigned, "signature": checkout["display_ticket"]["signature"]}).encode(),
    ]
    answers: list[CodeInfo | None] = []
    real_lookup = psp_lookup.lookup  # what terminal.daemon imported

    async def recording_lookup(url: str) -> CodeInfo | None:
        answer = await real_lookup(url)
        answers.append(answer)
        return answer

    monkeypatch.setattr(terminal_daemon, "lookup", recording_lookup)

    async with await keyed_terminal(psp, broker, shop) as terminal:
        topic = display_topic(shop.id, TERMINAL)
        await asyncio.to_thread(publish, broker.port, topic, show_qr_of(checkout))
        await terminal.until_screen("qr", checkout["id"])
        # On the terminal's own events topic: with a ticketed QR on screen
        # it hears no other (and the broker's ACL lets only the PSP write it).
        own_events = terminal_events_topic(shop.id, TERMINAL)
        for n, payload in enumerate(forged, start=1):
            await asyncio.to_thread(publish, broker.port, own_events, payload, retain=False)
            found = await until_logged(caplog, "ignored a checkout.paid event", n)
            assert "signature is missing or not the PSP's" in found[-1]
            assert_showing(terminal, checkout)

        # The cashier's unsigned "paid" only makes the terminal ask the PSP.
        status_paid = {"type": "status", "checkout_id": checkout["id"], "status": "paid"}
        await asyncio.to_thread(publish, broker.port, topic, json.dumps(status_paid))
        await until(lambda: answers, what="the terminal to ask the PSP")
        assert answers[0] is not None
        assert answers[0].status == "pending"
        await asyncio.sleep(0.1)
        assert_showing(terminal, checkout)

        # A real payment: the PSP's signed event shows paid.
        status, answer = await psp.pay(await psp.wallet(), code_of(checkout))
        assert status == 201, answer
        await terminal.until_screen("paid", checkout["id"])


async def test_the_cashiers_paid_is_shown_once_the_psp_confirms_it(
    psp: Psp, broker: Mosquitto
) -> None:
    # This PSP publishes no events: "paid" can only come from asking it.
    shop = await psp.merchant()
    checkout = await psp.checkout(shop, terminal_id=TERMINAL)
    topic = display_topic(shop.id, TERMINAL)
    async with await keyed_terminal(psp, broker, shop) as terminal:
        await asyncio.to_thread(publish, broker.port, topic, show_qr_of(checkout))
        await terminal.until_screen("qr", checkout["id"])
        status, answer = await psp.pay(await psp.wallet(), code_of(checkout))
        assert status == 201, answer
        status_paid = {"type": "status", "checkout_id": checkout["id"], "status": "paid"}
        await asyncio.to_thread(publish, broker.port, topic, json.dumps(status_paid))
        await terminal.until_screen("paid", checkout["id"])
        assert terminal.display.last is not None
        assert terminal.display.last.content.lines == ("Paid", "€12.34")


async def test_the_genuine_flow_works_with_a_key(psp_with_broker: Psp, broker: Mosquitto) -> None:
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    steps = Steps()
    order = CheckoutOrder(order_id="A-1001", amount=1234, currency="EUR", terminal_id=TERMINAL)
    displays = Subscriber(broker.port, display_topic(merchant.id, TERMINAL))

    async def pay_once_shown() -> None:
        await steps.wait_for("shown")
        status, answer = await psp.pay(wallet, code_of_url(steps.first("created").data["qr_url"]))
        assert status == 201, answer

    try:
        async with await keyed_terminal(psp, broker, merchant) as terminal:
            payer = asyncio.create_task(pay_once_shown())
            config = bridge_config(psp, merchant, broker.url)
            result = await run_checkout(config, order, steps.add)
            await payer
            await terminal.until_screen("paid", result.checkout_id)
        (message, *_) = await asyncio.to_thread(displays.wait_for, 1)
    finally:
        displays.close()
    assert result.outcome == "paid"
    assert [s.name for s in result.steps] == [
        "connected",
        "created",
        "sent",
        "shown",
        "event",
        "paid",
    ]
    command = parse_display_command(message.payload)
    assert command.type == "show_qr"
    assert command.display_ticket is not None
    assert command.display_ticket["terminal_id"] == TERMINAL


async def test_the_bridge_drops_events_that_do_not_verify(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    checkout = await psp.checkout(shop, terminal_id=TERMINAL)
    _, snapshot = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=shop.auth)
    keys = await psp_keys(psp)
    target = MqttTarget.parse(broker.url)
    async with BrokerLink(target, shop.id, keys=PspKeys(keys, lambda: psp_keys(psp))) as link:
        forged = SigningKey.generate().sign(forged_event(snapshot, shop.id))
        for payload in (forged_event(snapshot, shop.id), forged):
            await asyncio.to_thread(
                publish, broker.port, events_topic(shop.id), json.dumps(payload), retain=False
            )
        status, _ = await psp.pay(await psp.wallet(), code_of(checkout))
        assert status == 201
        events = await link.until(
            lambda: link.events_for(checkout["id"]) or None, time.monotonic() + 10
        )
        await asyncio.sleep(0.2)  # and nothing else comes
    assert events is not None
    assert len(events) == 1 == len(link.events_for(checkout["id"]))
    (event,) = events
    assert event.event_id != "evt_forged"
    assert event.signature is not None


async def test_events_on_mqtt_carry_valid_signatures(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    psp = psp_with_broker
    shop = await psp.merchant()
    subscriber = Subscriber(broker.port, events_topic(shop.id))
    try:
        paid = await psp.checkout(shop, order_id="P")
        await psp.pay(await psp.wallet(), code_of(paid))
        await psp.call(
            "POST", f"/v1/checkouts/{paid['id']}/refunds", json={"amount": 34}, headers=shop.auth
        )
        cancelled = await psp.checkout(shop, order_id="C")
        await psp.call("POST", f"/v1/checkouts/{cancelled['id']}/cancel", headers=shop.auth)
        messages = await asyncio.to_thread(subscriber.wait_for, 3)
    finally:
        subscriber.close()
    keys = await psp_keys(psp)
    kinds = []
    for message in messages:
        assert verify_json(message.payload, keys), message.payload
        event = CheckoutEvent.from_json(message.payload)
        assert event.signature is not None
        assert event.signature["kid"] == keys[0].kid
        kinds.append(event.type)
    assert kinds == ["checkout.paid", "checkout.refunded", "checkout.cancelled"]
    # GET /v1/events answers the same signed bytes.
    _, page = await psp.call("GET", "/v1/events", headers=shop.auth)
    assert [json.dumps(e, sort_keys=True) for e in page["events"]] == [
        json.dumps(json.loads(m.payload), sort_keys=True) for m in messages
    ]


def _public_keys_in(output: str) -> list[str]:
    return [word for word in output.split() if word.startswith("ed25519:")]


async def test_keys_show_and_rotate(tmp_path: Path) -> None:
    db = str(tmp_path / "psp.db")
    shown = await asyncio.to_thread(run_cli, "keys", "show", "--db", db)
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.strip().splitlines()[-1]
    assert first.startswith("ed25519:")
    assert len(first) == len("ed25519:") + 43
    assert PublicKey.parse(first)

    async def paid_event(order_id: str) -> bytes:
        psp = await start_psp(db)
        try:
            assert psp.storage.signing_key.public.text  # loaded once, at open
            shop = await psp.merchant()
            checkout = await psp.checkout(shop, order_id=order_id)
            await psp.pay(await psp.wallet(), code_of(checkout))
            (event,) = await psp.storage.events_after(shop.id, 0, limit=10)
            return event.payload
        finally:
            await stop_psp(psp)

    before = await paid_event("before")
    assert verify_json(before, [PublicKey.parse(first)])

    rotated = await asyncio.to_thread(run_cli, "keys", "rotate", "--db", db)
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip().splitlines()[-1]
    assert second.startswith("ed25519:")
    assert second != first

    shown = await asyncio.to_thread(run_cli, "keys", "show", "--db", db)
    assert shown.stdout.strip().splitlines()[-1] == second
    assert set(_public_keys_in(shown.stdout)) == {first, second}

    after = await paid_event("after")
    listed = parse_public_keys(_public_keys_in(shown.stdout))
    # Both verify against the list a terminal holds during the rotation...
    assert verify_json(before, listed)
    assert verify_json(after, listed)
    # ...each by its own key.
    assert verify_json(after, [PublicKey.parse(second)])
    assert not verify_json(before, [PublicKey.parse(second)])
    assert not verify_json(after, [PublicKey.parse(first)])


def test_the_terminal_takes_several_keys_for_a_rotation(tmp_path: Path) -> None:
    from terminal.cli import build_parser
    from terminal.config import FIELDS, ConfigError, load

    old, new = SigningKey.generate().public, SigningKey.generate().public
    base = {"merchant": "mer_1", "terminal": TERMINAL}
    flags = ["--merchant", "mer_1", "--terminal", TERMINAL]
    args = build_parser().parse_args(
        [*flags, "--psp-public-key", new.text, "--psp-public-key", old.text]
    )
    assert load({k: getattr(args, k) for k in FIELDS}, env={}).psp_public_keys == (new, old)
    env = {"SCAN2PAY_PSP_PUBLIC_KEY": f"{new.text}, {old.text}"}
    assert load(base, env=env).psp_public_keys == (new, old)
    toml = tmp_path / "terminal.toml"
    toml.write_text(
        f'merchant = "mer_1"\nterminal = "{TERMINAL}"\n'
        f'psp_public_key = ["{new.text}", "{old.text}"]\n'
    )
    assert load({}, config_file=str(toml), env={}).psp_public_keys == (new, old)
    assert load(base, env={}).psp_public_keys == ()  # not configured: nothing checked
    with pytest.raises(ConfigError) as caught:
        load({**base, "psp_public_key": ["ed25519:nope"]}, env={})
    assert "psp_public_key (--psp-public-key, SCAN2PAY_PSP_PUBLIC_KEY)" in caught.value.problems[0]
