"""Pairing end to end, every part a real process (docs/pairing.md): the
example broker over TLS, ``psp-server serve`` making and dropping terminal
accounts in its folder, ``psp-server terminal approve|revoke``, the board
over HTTP with a merchant's session and CSRF token, and ``scan2pay-terminal``
on the PNG display, from its pairing screen to a real checkout's QR."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import display_topic, state_topic
from tests.support.board import Signed, csrf_field, request, sign_in
from tests.support.commands import show_qr_of
from tests.support.pairing import PairingWorld, Terminal, pairing_world, tables
from tests.support.plain_http import http
from tests.support.polling import wait_until
from tests.support.secure_broker import Certs, Client, make_certs

pytestmark = pytest.mark.broker

LANE = "lane-1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def world(tmp_path: Path, certs: Certs) -> Iterator[PairingWorld]:
    with pairing_world(tmp_path / "world", certs) as made:
        yield made


def _states(client: Client, merchant_id: str, terminal_id: str = LANE) -> None:
    assert client.subscribe(state_topic(merchant_id, terminal_id)) == 1


def _checkout_on_screen(world: PairingWorld, terminal: Terminal, cashier: Client) -> str:
    """A real checkout for lane-1, shown as the cashier shows it; its QR URL."""
    merchant = world.merchants[0]
    body = {"order_id": f"P-{time.monotonic_ns()}", "amount": 1234, "currency": "EUR"}
    status, created = http(
        "POST",
        f"{world.psp.url}/v1/checkouts",
        {**body, "terminal_id": LANE},
        merchant["api_key"],
    )
    assert status == 201, created
    cashier.publish(display_topic(merchant["merchant_id"], LANE), show_qr_of(created).decode())
    wait_until(lambda: terminal.on_screen() == [created["qr_url"]], "the checkout's QR", 20)
    return str(created["qr_url"])


def test_pair_approved_with_the_cli_then_a_real_checkout_shows(
    world: PairingWorld, tmp_path: Path
) -> None:
    merchant = world.merchants[0]
    cashier = world.cashier(merchant["merchant_id"])
    _states(cashier, merchant["merchant_id"])
    started = time.monotonic()
    terminal = Terminal(tmp_path / "till", "pair", "--psp-url", world.psp.url)
    try:
        code = terminal.pairing_code()
        shown = time.monotonic()
        assert code in terminal.log()  # for whoever runs `pair` over SSH
        result = world.cli(
            "approve", code, "--merchant", merchant["merchant_id"], "--terminal", LANE
        )
        assert result.returncode == 0, result.stderr
        assert f"terminal {LANE} of merchant {merchant['merchant_id']} is paired" in result.stdout
        approved = time.monotonic()
        cashier.until_state(lambda s: s.online and s.screen == "idle", "online idle")
        online = time.monotonic()
        _checkout_on_screen(world, terminal, cashier)
        done = time.monotonic()
        print(
            f"\npair -> code on screen {shown - started:.2f}s;"
            f" approve took {approved - shown:.2f}s;"
            f" approved -> online {online - approved:.2f}s; first checkout QR {done - online:.2f}s;"
            f" pair -> first QR of a real checkout on screen, approval included:"
            f" {done - started:.2f}s ({done - started - (approved - shown):.2f}s of it the"
            " terminal's and the PSP's own)"
        )
        assert terminal.process.poll() is None  # in service in the same process

        # The config file: mode 0600, owned by this user, and what was handed over.
        mode = terminal.config.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o600
        assert mode.st_uid == os.getuid()
        written = tomllib.loads(terminal.config.read_text())
        assert written["merchant"] == merchant["merchant_id"]
        assert written["terminal"] == LANE
        assert written["psp_url"] == world.psp.url
        assert written["name"] == "Shop A"
        _, keys = http("GET", f"{world.psp.url}/v1/keys")
        assert written["psp_public_key"] == [key["public_key"] for key in keys["keys"]]
        target = MqttTarget.parse(written["mqtt"])
        assert (target.host, target.port, target.tls) == ("127.0.0.1", world.broker.tls_port, True)
        assert target.username == f"{merchant['merchant_id']}/{LANE}"
        assert target.password is not None
        assert len(target.password) >= 43
        assert Path(written["mqtt_ca"]).read_text() == world.broker.ca.read_text()
        assert len(written["device_secret"]) >= 43
        assert written["pairing_id"].startswith("pair_")
        # Nothing but the terminal knows the password: the PSP forgot it.
        assert target.password not in json.dumps(tables(world.db))
        assert not [p for p in terminal.config.parent.iterdir() if p.name.endswith(".tmp")]
    finally:
        terminal.stop()
        cashier.close()


def test_a_terminal_without_credentials_pairs_by_itself_on_the_board_and_unpairing_sends_it_back(
    world: PairingWorld, tmp_path: Path
) -> None:
    merchant = world.merchants[0]
    folder = tmp_path / "till"
    folder.mkdir()
    config = folder / "terminal.toml"
    config.write_text(f'psp_url = "{world.psp.url}"\nidle_after = 30\n')
    cashier = world.cashier(merchant["merchant_id"])
    _states(cashier, merchant["merchant_id"])
    terminal = Terminal(folder, config=config)  # the plain daemon: no `pair`
    try:
        code = terminal.pairing_code()
        notice = asyncio.run(_board_pairs(world, merchant["api_key"], code))
        assert f"Terminal {LANE} is paired" in notice
        cashier.until_state(lambda s: s.online and s.screen == "idle", "online idle")
        _checkout_on_screen(world, terminal, cashier)
        assert tomllib.loads(config.read_text())["idle_after"] == 30  # kept

        asyncio.run(_board_unpairs(world, merchant["api_key"]))
        new_code = terminal.pairing_code(other_than=code)
        assert new_code != code
        written = tomllib.loads(config.read_text())
        assert not {"mqtt", "merchant", "terminal", "device_secret"} & set(written)
        assert written["psp_url"] == world.psp.url
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert "unpaired" in terminal.log()
        assert terminal.process.poll() is None
    finally:
        terminal.stop()
        cashier.close()


class _Board:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http


async def _signed(
    world: PairingWorld, api_key: str
) -> tuple[_Board, Signed, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    board = _Board(world.psp.url, session)
    return board, await sign_in(board, api_key), session


async def _board_pairs(world: PairingWorld, api_key: str, code: str) -> str:
    board, signed, session = await _signed(world, api_key)
    try:
        # The QR's link, as the merchant's phone opens it: the code is filled in.
        response, html = await request(
            board, "GET", f"/merchant/pair?code={code}", headers=signed.headers
        )
        assert response.status == 200, html
        assert f'value="{code[:4]}-{code[4:8]}-{code[8:]}"' in html
        response, html = await request(
            board,
            "POST",
            "/merchant/pair",
            headers=signed.headers,
            data={"csrf": csrf_field(html), "code": code, "terminal_id": LANE},
        )
        assert response.status == 200, html
        return html
    finally:
        await session.close()


async def _board_unpairs(world: PairingWorld, api_key: str) -> None:
    board, signed, session = await _signed(world, api_key)
    try:
        response, html = await request(board, "GET", "/merchant/pair", headers=signed.headers)
        assert f'value="{LANE}"' in html
        response, html = await request(
            board,
            "POST",
            "/merchant/pair/unpair",
            headers=signed.headers,
            data={"csrf": csrf_field(html), "terminal_id": LANE},
        )
        assert response.status == 200, html
        assert f"Terminal {LANE} is unpaired" in html
    finally:
        await session.close()


def _start(world: PairingWorld, secret_hash: str = "ab" * 32) -> tuple[int, Any]:
    return http("POST", f"{world.psp.url}/v1/pairings", {"device_secret_hash": secret_hash})


def test_bad_input_on_the_command_line_is_refused_and_changes_nothing(
    world: PairingWorld, tmp_path: Path
) -> None:
    a, b = world.merchants
    terminal = Terminal(tmp_path / "till", "pair", "--psp-url", world.psp.url)
    try:
        code = terminal.pairing_code()
        before = (tables(world.db), world.broker_files())
        wrong = ("Z" if code[0] != "Z" else "Y") + code[1:]
        cases = [
            ([wrong, "--merchant", a["merchant_id"], "--terminal", LANE], "no terminal is waiting"),
            (["ABCD-EFGH-J0", "--merchant", a["merchant_id"], "--terminal", LANE], "never use 0"),
            ([code, "--merchant", "mer_nobody", "--terminal", LANE], "no merchant mer_nobody"),
            ([code, "--merchant", a["merchant_id"], "--terminal", f"{b['merchant_id']}/{LANE}"],
             "terminal_id may contain only"),
        ]  # fmt: skip
        for argv, said in cases:
            result = world.cli("approve", *argv)
            assert result.returncode == 2, (argv, result.stdout)
            assert said in result.stderr, (argv, result.stderr)
            assert (tables(world.db), world.broker_files()) == before, argv
        # Revoking what the merchant does not have: another merchant's terminal.
        ok = world.cli("approve", code, "--merchant", b["merchant_id"], "--terminal", LANE)
        assert ok.returncode == 0, ok.stderr
        before = (tables(world.db), world.broker_files())
        result = world.cli("revoke", "--merchant", a["merchant_id"], "--terminal", LANE)
        assert result.returncode == 2
        assert f"no terminal {LANE} is paired with this merchant" in result.stderr
        # A used code, and a terminal id that is paired already.
        result = world.cli("approve", code, "--merchant", b["merchant_id"], "--terminal", "lane-2")
        assert (result.returncode, result.stderr.strip()) == (
            2, "psp-server: this code has been used already"
        )  # fmt: skip
        status, other = _start(world)
        assert status == 201, other
        result = world.cli(
            "approve", other["code"], "--merchant", b["merchant_id"], "--terminal", LANE
        )
        assert result.returncode == 2
        assert f"a terminal {LANE} is paired already" in result.stderr
        assert (tables(world.db)["paired_terminals"], world.broker_files()) == (
            before[0]["paired_terminals"],
            before[1],
        )
    finally:
        terminal.stop()


def test_settings_go_only_to_the_device_that_started_and_only_once(world: PairingWorld) -> None:
    import hashlib

    secret = "s" * 43
    status, started = _start(world, hashlib.sha256(secret.encode()).hexdigest())
    assert status == 201, started
    poll = f"{world.psp.url}/v1/pairings/{started['pairing_id']}/poll"
    assert http("POST", poll, {"device_secret": "t" * 43})[0] == 403
    assert http("POST", poll, {"device_secret": secret})[1]["status"] == "pending"
    merchant = world.merchants[0]
    result = world.cli(
        "approve", started["code"], "--merchant", merchant["merchant_id"], "--terminal", LANE
    )
    assert result.returncode == 0, result.stderr
    before = tables(world.db)
    status, refused = http("POST", poll, {"device_secret": "t" * 43})
    assert (status, refused["error"]["code"]) == (403, "wrong_device_secret")
    assert tables(world.db) == before  # the password still waits for its device
    status, handed = http("POST", poll, {"device_secret": secret})
    assert (status, handed["status"]) == (200, "approved")
    password = handed["settings"]["mqtt_password"]
    assert password in handed["settings"]["mqtt_url"].replace("%2F", "/")
    again = http("POST", poll, {"device_secret": secret})
    assert again == (
        200,
        {"status": "paired", "merchant_id": merchant["merchant_id"], "terminal_id": LANE},
    )
    assert password not in json.dumps(tables(world.db))
    # The handed-over account logs in over TLS, with the CA handed over with it.
    client = _connect_soon(world, handed["settings"]["mqtt_username"], password)
    try:
        assert client.subscribe(display_topic(merchant["merchant_id"], LANE)) == 1
    finally:
        client.close()


def _connect_soon(world: PairingWorld, username: str, password: str) -> Client:
    from tests.support.secure_broker import Refused

    deadline = time.monotonic() + 10
    while True:
        try:
            return Client(world.broker, username, password)
        except Refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_starting_pairings_is_rate_limited_per_address(tmp_path: Path, certs: Certs) -> None:
    with pairing_world(tmp_path / "world", certs, extra=("--rate-pair-per-ip", "3/60s")) as world:
        assert [_start(world)[0] for _ in range(3)] == [201, 201, 201]
        before = tables(world.db)
        status, body = _start(world)
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert tables(world.db) == before


def test_a_psp_without_pairing_settings_says_so(tmp_path: Path) -> None:
    from tests.support.process import PspProcess

    psp = PspProcess(tmp_path / "psp.db")
    try:
        status, body = http("POST", f"{psp.url}/v1/pairings", {"device_secret_hash": "ab" * 32})
        assert (status, body["error"]["code"]) == (503, "pairing_unavailable")
    finally:
        psp.stop()
