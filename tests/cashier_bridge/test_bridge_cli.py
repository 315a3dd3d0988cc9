"""``cashier-bridge checkout`` as a process, the way a cashier or a script
runs it: its exit codes, its lines, Ctrl-C, and a key that never shows."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bridge import (
    BIN,
    TERMINAL,
    BridgeProcess,
    bridge_env,
    closed_port,
    code_of_url,
    retained_display,
    running_terminal,
)
from tests.support.broker import Mosquitto
from tests.support.psp import Psp


def checkout_args(psp_url: str, mqtt_url: str, *extra: str, order: str = "A-1001") -> list[str]:
    return [
        "checkout",
        "--json",
        "--order",
        order,
        "--amount",
        "12.34",
        "--currency",
        "EUR",
        "--terminal",
        TERMINAL,
        "--psp-url",
        psp_url,
        "--mqtt",
        mqtt_url,
        "--screen-timeout",
        "3",
        *extra,
    ]


async def test_paid_exits_0_and_never_shows_the_key_or_the_broker_password(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    psp = psp_with_broker
    merchant, wallet = await psp.merchant(), await psp.wallet()
    # mosquitto without a password file takes any login, so the password
    # travels and could leak into a log line.
    mqtt_url = f"mqtt://cashier:broker-pw-9f2e@127.0.0.1:{broker.port}"
    async with running_terminal(broker, merchant.id) as terminal:
        bridge = await BridgeProcess.start(
            *checkout_args(psp.url, mqtt_url, "--log-level", "DEBUG"),
            env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
        )
        created = await bridge.wait_for_step("created")
        await bridge.wait_for_step("shown")
        status, _ = await psp.pay(wallet, code_of_url(created["data"]["qr_url"]))
        assert status == 201
        assert await bridge.finish() == 0, bridge.output()
        await terminal.until_screen("paid", created["data"]["checkout_id"])
    steps = bridge.steps
    assert [s["step"] for s in steps] == ["connected", "created", "sent", "shown", "event", "paid"]
    assert all(set(s) == {"step", "message", "data", "elapsed_ms"} for s in steps)
    assert [s["elapsed_ms"] for s in steps] == sorted(s["elapsed_ms"] for s in steps)
    assert steps[-1]["message"] == "paid (confirmed)"
    everything = bridge.output()
    assert "DEBUG" in everything  # the logging was really on
    assert merchant.key not in everything
    assert "broker-pw-9f2e" not in everything


async def test_cancelled_at_the_psp_exits_6(psp_with_broker: Psp, broker: Mosquitto) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    async with running_terminal(broker, merchant.id) as terminal:
        bridge = await BridgeProcess.start(
            *checkout_args(psp.url, broker.url),
            env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
        )
        checkout_id = (await bridge.wait_for_step("shown"))["data"]["checkout_id"]
        status, _ = await psp.call(
            "POST", f"/v1/checkouts/{checkout_id}/cancel", headers=merchant.auth
        )
        assert status == 200
        assert await bridge.finish() == 6, bridge.output()
        await terminal.until_screen("cancelled", checkout_id)
    assert bridge.steps[-1]["step"] == "cancelled"


async def test_expired_exits_7(psp_with_broker: Psp, broker: Mosquitto) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    async with running_terminal(broker, merchant.id) as terminal:
        bridge = await BridgeProcess.start(
            *checkout_args(psp.url, broker.url, "--expires-in", "1"),
            env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
        )
        assert await bridge.finish() == 7, bridge.output()
        checkout_id = bridge.steps[-1]["data"]["checkout_id"]
        await terminal.until_screen("expired", checkout_id)
    # From the event or from the check at expiry, whichever came first.
    assert bridge.steps[-1]["message"] == "expired (confirmed)"


async def test_no_terminal_exits_5_and_the_checkout_is_cancelled(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    bridge = await BridgeProcess.start(
        *checkout_args(psp.url, broker.url, "--screen-timeout", "0.5"),
        env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
    )
    assert await bridge.finish() == 5, bridge.output()
    names = [s["step"] for s in bridge.steps]
    assert names == ["connected", "created", "sent", "terminal_offline", "failed"]
    assert bridge.steps[-1]["data"]["code"] == "terminal_offline"
    checkout_id = bridge.steps[1]["data"]["checkout_id"]
    _, checkout = await psp.call("GET", f"/v1/checkouts/{checkout_id}", headers=merchant.auth)
    assert checkout["status"] == "cancelled"
    assert await asyncio.to_thread(retained_display, broker, merchant.id) == "idle"


async def test_psp_unreachable_exits_3(broker: Mosquitto) -> None:
    bridge = await BridgeProcess.start(
        *checkout_args(f"http://127.0.0.1:{closed_port()}", broker.url),
        env=bridge_env(SCAN2PAY_MERCHANT_KEY="mk_anything"),
    )
    assert await bridge.finish() == 3, bridge.output()
    assert bridge.steps[-1]["data"]["code"] == "psp_unreachable"


async def test_broker_unreachable_exits_4(psp: Psp) -> None:
    merchant = await psp.merchant()
    bridge = await BridgeProcess.start(
        *checkout_args(psp.url, f"mqtt://127.0.0.1:{closed_port()}"),
        env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
    )
    assert await bridge.finish() == 4, bridge.output()
    assert bridge.steps[-1]["data"]["code"] == "broker_unreachable"


async def test_psp_refusal_exits_8(psp_with_broker: Psp, broker: Mosquitto) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    await psp.checkout(merchant, amount=999, terminal_id=TERMINAL)  # A-1001, another amount
    bridge = await BridgeProcess.start(
        *[arg for arg in checkout_args(psp.url, broker.url) if arg != "--json"],
        env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
    )
    assert await bridge.finish() == 8, bridge.output()
    assert "order_conflict, HTTP 409" in bridge.stderr.decode()
    assert "(exit 8)" in bridge.stderr.decode()


async def test_ctrl_c_cancels_the_checkout_clears_the_terminal_and_exits_130(
    psp_with_broker: Psp, broker: Mosquitto
) -> None:
    psp = psp_with_broker
    merchant = await psp.merchant()
    async with running_terminal(broker, merchant.id) as terminal:
        bridge = await BridgeProcess.start(
            *[arg for arg in checkout_args(psp.url, broker.url) if arg != "--json"],
            env=bridge_env(SCAN2PAY_MERCHANT_KEY=merchant.key),
        )
        await bridge.until_line("on screen at", timeout=15)
        checkout_id = bridge.lines[1].split()[1]
        assert checkout_id.startswith("co_"), bridge.lines
        bridge.process.send_signal(signal.SIGINT)
        assert await bridge.finish() == 130, bridge.output()
        await terminal.until_screen("idle")
    assert bridge.lines[-1] == (
        f"interrupted: cancelled {checkout_id} at the PSP; {TERMINAL} cleared"
    ), bridge.output()
    _, checkout = await psp.call("GET", f"/v1/checkouts/{checkout_id}", headers=merchant.auth)
    assert checkout["status"] == "cancelled"
    assert await asyncio.to_thread(retained_display, broker, merchant.id) == "idle"


# Bad input: exit 2, and nothing is contacted. A listening socket that is
# never accepted from shows it: any connect attempt would sit in its backlog.


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def untouched(sock: socket.socket) -> bool:
    try:
        connection, _ = sock.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def run_bridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cashier-bridge"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


@pytest.mark.parametrize(
    ("amount", "currency", "key", "expected"),
    [
        (("--amount", "12.345"), "EUR", "mk_x", "EUR has 2 decimal places; '12.345' has more"),
        (("--amount", "12.34"), "XYZ", "mk_x", "XYZ is not an ISO 4217 currency"),
        (("--amount-minor", "1234"), "EUR", None, "merchant key: missing"),
        (("--amount", "1", "--amount-minor", "100"), "EUR", "mk_x", "give exactly one"),
    ],
)
def test_bad_input_exits_2_without_contacting_anything(
    listener: socket.socket,
    amount: tuple[str, ...],
    currency: str,
    key: str | None,
    expected: str,
) -> None:
    port = listener.getsockname()[1]
    env = bridge_env(**({"SCAN2PAY_MERCHANT_KEY": key} if key else {}))
    result = run_bridge(
        "checkout",
        "--order",
        "A-1001",
        *amount,
        "--currency",
        currency,
        "--terminal",
        TERMINAL,
        "--psp-url",
        f"http://127.0.0.1:{port}",
        "--mqtt",
        f"mqtt://127.0.0.1:{port}",
        env=env,
    )
    assert result.returncode == 2, result
    assert expected in result.stderr
    assert result.stdout == ""
    assert untouched(listener)


def test_every_problem_is_told_at_once_as_one_json_line(
    listener: socket.socket, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('merchant_key = "mk_in_the_file"\nscreen_timeout = "soon"\n')
    result = run_bridge(
        "checkout",
        "--json",
        "--config",
        str(config),
        "--amount",
        "12.345",
        "--currency",
        "EUR",
        "--mqtt",
        "http://127.0.0.1:1883",
        env=bridge_env(SCAN2PAY_MERCHANT_KEY="mk_secret_in_env"),
    )
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    failed = json.loads(line)
    assert failed["step"] == "failed"
    assert failed["data"]["code"] == "bad_input"
    problems = "\n".join(failed["data"]["problems"])
    for expected in (
        "'merchant_key' must not be in a config file",
        "screen_timeout (--screen-timeout, SCAN2PAY_SCREEN_TIMEOUT): 'soon'",
        "mqtt (--mqtt, SCAN2PAY_MQTT)",
        "terminal (--terminal, SCAN2PAY_TERMINAL): missing",
        "--order: missing",
        "--amount: EUR has 2 decimal places",
    ):
        assert expected in problems
    assert len(failed["data"]["problems"]) == 6
    assert "mk_in_the_file" not in result.stdout + result.stderr
    assert "mk_secret_in_env" not in result.stdout + result.stderr
    assert untouched(listener)
