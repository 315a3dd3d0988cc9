"""examples/mosquitto/ as a real broker: who may log in, and who may read and
write which topics, with accounts made by psp-server's account commands.

mosquitto (MQTT 3.1.1) acknowledges a refused PUBLISH like any other and
drops it, so a denied write is shown by an observer that would receive it:
the writer then publishes an allowed marker on the same connection, and the
observer, subscribed to both on one connection, must get the marker and
nothing before it. A denied read is a SUBACK of 0x80, and a message
published to that topic followed by a marker the reader may see."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from psp_server.mqtt import accounts as mqtt_accounts
from psp_server.mqtt.presence import Presence
from psp_server.runtime import cli
from scan2pay_common.messages import CheckoutEvent, TerminalState
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import (
    display_topic,
    events_topic,
    state_topic,
    terminal_events_topic,
)
from tests.support.mqtt import Received
from tests.support.polling import until
from tests.support.process import run_cli
from tests.support.psp import start_psp, stop_psp
from tests.support.secure_broker import (
    SUBACK_FAILURE,
    Certs,
    Client,
    Refused,
    SecureMosquitto,
    make_certs,
)

pytestmark = pytest.mark.broker

BIN = Path(sys.executable).parent

A, B = "mer_aaaaaaaaaaaaaaaaaaaa", "mer_bbbbbbbbbbbbbbbbbbbb"
WIRETAP = "wiretap"  # a test-only account that reads everything: the observer


class Accounts(dict[str, str]):
    """username -> password."""


Login = Callable[[str], Client]  # a username -> its logged-in client, closed after the test


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure(
    tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[tuple[SecureMosquitto, Accounts]]:
    broker = SecureMosquitto(tmp_path_factory.mktemp("mosquitto"), certs)
    accounts = Accounts()
    for account in [
        mqtt_accounts.psp_account(),
        mqtt_accounts.cashier_account(A),
        mqtt_accounts.cashier_account(B),
        mqtt_accounts.terminal_account(A, "till-1"),
        mqtt_accounts.terminal_account(A, "till-2"),
        mqtt_accounts.terminal_account(B, "till-1"),
        mqtt_accounts.Account("observer", WIRETAP, (("read", "#"),)),
    ]:
        accounts[account.username] = mqtt_accounts.create_account(broker.dir, account)
    broker.start()
    yield broker, accounts
    broker.stop()


@pytest.fixture
def login(secure: tuple[SecureMosquitto, Accounts]) -> Iterator[Login]:
    broker, accounts = secure
    made: list[Client] = []

    def make(username: str) -> Client:
        client = Client(broker, username, accounts[username])
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _ok(client: Client, *topics: str) -> None:
    for topic in topics:
        assert client.subscribe(topic) == 1, topic


# Logging in.


def test_anonymous_clients_are_refused_on_both_listeners(
    secure: tuple[SecureMosquitto, Accounts],
) -> None:
    broker, _ = secure
    for tls in (True, False):
        with pytest.raises(Refused):
            Client(broker, None, None, tls=tls)


def test_a_wrong_password_or_unknown_user_is_refused(
    secure: tuple[SecureMosquitto, Accounts],
) -> None:
    broker, accounts = secure
    with pytest.raises(Refused):
        Client(broker, A, accounts[B])
    with pytest.raises(Refused):
        Client(broker, "mer_nobody", accounts[A])


def test_the_tls_listener_is_refused_by_a_client_that_does_not_trust_its_ca(
    secure: tuple[SecureMosquitto, Accounts], tmp_path: Path
) -> None:
    broker, accounts = secure
    other = make_certs(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker, "psp", accounts["psp"], ca=other.ca)


def test_the_psp_logs_in_on_the_loopback_listener_without_tls(
    secure: tuple[SecureMosquitto, Accounts],
) -> None:
    broker, accounts = secure
    Client(broker, "psp", accounts["psp"], tls=False).close()


# What each account may do.


def test_a_terminal_reads_its_display_and_events_and_writes_its_state(login: Login) -> None:
    terminal, cashier, psp = login(f"{A}/till-1"), login(A), login("psp")
    _ok(terminal, display_topic(A, "till-1"), events_topic(A))
    _ok(cashier, f"scan2pay/v1/m/{A}/t/+/state", events_topic(A))

    cashier.publish(display_topic(A, "till-1"), '{"type":"idle"}', retain=True)
    assert terminal.next().payload == b'{"type":"idle"}'
    psp.publish(events_topic(A), "event-1")
    assert terminal.next().payload == b"event-1"
    assert cashier.next().payload == b"event-1"
    terminal.publish(state_topic(A, "till-1"), "state-1", retain=True)
    got = cashier.next()
    assert (got.topic, got.payload) == (state_topic(A, "till-1"), b"state-1")


def test_a_terminal_reads_its_own_events_topic(login: Login) -> None:
    terminal, psp = login(f"{A}/till-1"), login("psp")
    _ok(terminal, terminal_events_topic(A, "till-1"))
    psp.publish(terminal_events_topic(A, "till-1"), "event-for-till-1")
    got = terminal.next()
    assert (got.topic, got.payload) == (terminal_events_topic(A, "till-1"), b"event-for-till-1")


def test_a_terminal_cannot_read_another_terminals_events(login: Login) -> None:
    marker, secret = _unique("marker"), _unique("secret")
    terminal, psp = login(f"{A}/till-1"), login("psp")
    _subscribe_all(
        terminal,
        terminal_events_topic(A, "till-2"),
        terminal_events_topic(B, "till-1"),
        f"scan2pay/v1/m/{A}/t/+/events",
        terminal_events_topic(A, "till-1"),
    )
    psp.publish(terminal_events_topic(A, "till-2"), secret)
    psp.publish(terminal_events_topic(B, "till-1"), secret)
    psp.publish(terminal_events_topic(A, "till-1"), marker)
    assert secret.encode() not in _payloads(terminal.until(marker))


def test_a_terminal_cannot_read_another_merchants_events(login: Login) -> None:
    marker, secret = _unique("marker"), _unique("secret")
    terminal, psp = login(f"{A}/till-1"), login("psp")
    _subscribe_all(terminal, events_topic(B), "scan2pay/v1/m/+/events", "#", events_topic(A))
    psp.publish(events_topic(B), secret)
    psp.publish(events_topic(A), marker)
    assert secret.encode() not in _payloads(terminal.until(marker))


def test_a_terminal_cannot_read_another_terminals_display(login: Login) -> None:
    marker, not_yours = _unique("marker"), _unique("not_yours")
    terminal, cashier_a, cashier_b = login(f"{A}/till-1"), login(A), login(B)
    _subscribe_all(
        terminal,
        display_topic(A, "till-2"),
        display_topic(B, "till-1"),
        f"scan2pay/v1/m/{A}/t/+/display",
        display_topic(A, "till-1"),
    )
    cashier_b.publish(display_topic(B, "till-1"), not_yours, retain=True)
    cashier_a.publish(display_topic(A, "till-2"), not_yours, retain=True)
    cashier_a.publish(display_topic(A, "till-1"), marker, retain=True)
    assert not_yours.encode() not in _payloads(terminal.until(marker))


def test_a_terminal_cannot_write_displays_events_or_other_states(login: Login) -> None:
    marker, forged = _unique("marker"), _unique("forged")
    terminal, wiretap = login(f"{A}/till-1"), login(WIRETAP)
    _ok(wiretap, "#")
    for topic in (
        display_topic(A, "till-1"),
        display_topic(A, "till-2"),
        events_topic(A),
        terminal_events_topic(A, "till-1"),
        terminal_events_topic(A, "till-2"),
        state_topic(A, "till-2"),
        state_topic(B, "till-1"),
    ):
        terminal.publish(topic, forged, retain=True)
    terminal.publish(state_topic(A, "till-1"), marker)
    assert forged.encode() not in _payloads(wiretap.until(marker))
    # Nor did the broker keep a forged display as a retained message.
    late = login(f"{A}/till-2")
    _ok(late, display_topic(A, "till-2"))
    login(A).publish(display_topic(A, "till-2"), marker, retain=True)
    assert forged.encode() not in _payloads(late.until(marker))


def test_a_cashier_cannot_write_events(login: Login) -> None:
    marker, forged_event = _unique("marker"), _unique("forged_event")
    cashier, terminal = login(A), login(f"{A}/till-1")
    _ok(terminal, events_topic(A), display_topic(A, "till-1"))
    cashier.publish(events_topic(A), forged_event)
    cashier.publish(display_topic(A, "till-1"), marker, retain=True)
    assert forged_event.encode() not in _payloads(terminal.until(marker))


def test_a_cashier_cannot_write_a_terminals_events(login: Login) -> None:
    marker, forged_event = _unique("marker"), _unique("forged_event")
    cashier, terminal = login(A), login(f"{A}/till-1")
    _ok(terminal, terminal_events_topic(A, "till-1"), display_topic(A, "till-1"))
    cashier.publish(terminal_events_topic(A, "till-1"), forged_event)
    cashier.publish(display_topic(A, "till-1"), marker, retain=True)
    assert forged_event.encode() not in _payloads(terminal.until(marker))


def test_a_cashier_cannot_write_another_merchants_display(login: Login) -> None:
    marker, forged = _unique("marker"), _unique("forged")
    cashier_a, wiretap = login(A), login(WIRETAP)
    _ok(wiretap, "#")
    cashier_a.publish(display_topic(B, "till-1"), forged, retain=True)
    cashier_a.publish(display_topic(A, "till-1"), marker, retain=True)
    assert forged.encode() not in _payloads(wiretap.until(marker))


def test_a_cashier_reads_only_its_merchants_events_and_states(login: Login) -> None:
    marker, secret = _unique("marker"), _unique("secret")
    cashier_a, terminal_a, terminal_b, psp = (
        login(A), login(f"{A}/till-1"), login(f"{B}/till-1"), login("psp")
    )  # fmt: skip
    _subscribe_all(
        cashier_a,
        events_topic(B),
        f"scan2pay/v1/m/{B}/t/+/state",
        display_topic(A, "till-1"),  # it writes displays; it does not read them
        f"scan2pay/v1/m/{A}/t/+/state",
    )
    _ok(terminal_a, display_topic(A, "till-1"))
    psp.publish(events_topic(B), secret)
    terminal_b.publish(state_topic(B, "till-1"), secret)
    cashier_a.publish(display_topic(A, "till-1"), secret, retain=True)
    # The terminal publishes its state only once the display reached it, so
    # anything sent to the cashier before is ahead of the marker.
    terminal_a.until(secret)
    terminal_a.publish(state_topic(A, "till-1"), marker, retain=True)
    assert secret.encode() not in _payloads(cashier_a.until(marker))


def test_the_psp_writes_every_merchants_events_and_reads_only_terminal_states(
    login: Login,
) -> None:
    forged, event_a, event_b, shown, marker = (
        _unique("forged"),
        _unique("event_a"),
        _unique("event_b"),
        _unique("shown"),
        _unique("marker"),
    )
    psp, wiretap, cashier, terminal = login("psp"), login(WIRETAP), login(A), login(f"{A}/till-1")
    _ok(wiretap, "#")
    _subscribe_all(psp, "#")
    psp.publish(display_topic(A, "till-1"), forged, retain=True)
    psp.publish(state_topic(A, "till-1"), forged, retain=True)
    psp.publish(events_topic(A), event_a)
    psp.publish(terminal_events_topic(A, "till-1"), event_a)
    psp.publish(events_topic(B), event_b)
    # (Not the retained messages that earlier tests left, sent on subscribing.)
    seen = [(m.topic, m.payload) for m in wiretap.until(event_b) if not m.retain]
    assert seen == [
        (events_topic(A), event_a.encode()),
        (terminal_events_topic(A, "till-1"), event_a.encode()),
        (events_topic(B), event_b.encode()),
    ]
    # The PSP reads terminals' states (presence, for the merchant's board),
    # and nothing else: not its own events, not a display.
    cashier.publish(display_topic(A, "till-1"), shown, retain=True)
    terminal.publish(state_topic(A, "till-1"), marker)
    got = psp.until(marker)
    assert {m.topic.rsplit("/", 1)[1] for m in got} == {"state"}, got
    assert not {forged, event_a, event_b, shown} & {m.payload.decode() for m in got}


def test_a_terminal_cannot_read_any_terminals_state(login: Login) -> None:
    marker, secret = _unique("marker"), _unique("secret")
    till_1, till_2, other, cashier = (
        login(f"{A}/till-1"), login(f"{A}/till-2"), login(f"{B}/till-1"), login(A)
    )  # fmt: skip
    _subscribe_all(
        till_1,
        state_topic(A, "till-2"),
        state_topic(B, "till-1"),
        state_topic(A, "till-1"),  # it writes its own; it does not read it
        f"scan2pay/v1/m/{A}/t/+/state",
        display_topic(A, "till-1"),
    )
    till_2.publish(state_topic(A, "till-2"), secret)
    other.publish(state_topic(B, "till-1"), secret)
    till_1.publish(state_topic(A, "till-1"), secret)
    cashier.publish(display_topic(A, "till-1"), marker, retain=True)
    got = till_1.until(marker)
    assert secret.encode() not in _payloads(got)
    assert not [m for m in got if m.topic.endswith("/state")]


async def test_the_psps_presence_hears_terminal_states_through_the_acl(
    secure: tuple[SecureMosquitto, Accounts], login: Login
) -> None:
    broker, accounts = secure
    userinfo = mqtt_accounts.userinfo("psp", accounts["psp"])
    presence = Presence(MqttTarget.parse(f"mqtt://{userinfo}@127.0.0.1:{broker.plain_port}"))
    task = asyncio.create_task(presence.run())
    try:
        async with presence.watch(B) as watch:
            while not watch.connected:
                await asyncio.wait_for(watch.changed(), 10)
            terminal = await asyncio.to_thread(login, f"{B}/till-1")
            online = TerminalState(online=True, screen="idle", checkout_id=None, displayed_at=None)
            await asyncio.to_thread(
                terminal.publish, state_topic(B, "till-1"), online.to_json().decode(), retain=True
            )
            while [(t.terminal_id, t.online) for t in watch.terminals()] != [("till-1", True)]:
                await asyncio.wait_for(watch.changed(), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _subscribe_all(client: Client, *topics: str) -> None:
    """mosquitto's ACL file grants every SUBSCRIBE (SUBACK 1) and checks
    read access as it delivers each message; accept 0x80 should it change."""
    for topic in topics:
        assert client.subscribe(topic) in (1, SUBACK_FAILURE), topic


def _unique(word: str) -> str:
    """A payload no other test sent: the broker keeps retained ones."""
    return f"{word}-{uuid.uuid4().hex[:8]}"


def _payloads(messages: list[Received]) -> list[bytes]:
    return [m.payload for m in messages]


# psp-server's account commands.


def test_terminal_create_prints_the_password_once_and_works_after_a_reload(
    secure: tuple[SecureMosquitto, Accounts],
) -> None:
    broker, _ = secure
    result = run_cli(
        "terminal", "create", "--merchant", A, "--terminal", "till-9",
        "--mosquitto-dir", str(broker.dir), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["username"] == f"{A}/till-9"
    assert shown["role"] == "terminal"
    password = shown["password"]
    assert len(password) >= 43  # 256 random bits
    assert shown["userinfo"] == f"{A}%2Ftill-9:{password}"
    passwd = (broker.dir / "passwd").read_text()
    assert password not in passwd
    assert f"{A}/till-9:$7$" in passwd
    assert f"user {A}/till-9\n" in (broker.dir / "acl").read_text()

    with pytest.raises(Refused):  # the broker has not reloaded its files yet
        Client(broker, f"{A}/till-9", password)
    broker.reload()
    client = _connect_soon(broker, f"{A}/till-9", password)
    try:
        assert client.subscribe(display_topic(A, "till-9")) == 1
    finally:
        client.close()


def _connect_soon(broker: SecureMosquitto, username: str, password: str) -> Client:
    """mosquitto rereads its files soon after the SIGHUP, not at once."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Client(broker, username, password)
        except Refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_account_commands_refuse_duplicates_and_bad_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(tmp_path)
    assert cli.main(["cashier", "create", "--merchant", A, "--mosquitto-dir", folder]) == 0
    out = capsys.readouterr().out
    assert f"username: {A}\n" in out
    assert "shown once" in out
    assert stat.S_IMODE((tmp_path / "passwd").stat().st_mode) == 0o640
    for argv in (
        ["cashier", "create", "--merchant", A],
        ["cashier", "create", "--merchant", "mer/x"],
        ["cashier", "create", "--merchant", "psp"],
        ["terminal", "create", "--merchant", A, "--terminal", "till+1"],
        ["terminal", "create", "--merchant", "", "--terminal", "till-1"],
    ):
        assert cli.main([*argv, "--mosquitto-dir", folder]) == 2, argv
        assert "psp-server:" in capsys.readouterr().err
    assert cli.main(["relay", "create", "--mosquitto-dir", folder]) == 0
    assert cli.main(["relay", "create", "--mosquitto-dir", folder]) == 2
    assert "already exists" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    assert cli.main(["relay", "create", "--mosquitto-dir", missing]) == 2
    assert mqtt_accounts.password_usernames(tmp_path / "passwd") == {A, "psp"}
    assert mqtt_accounts.acl_usernames(tmp_path / "acl") == {A, "psp"}


# scan2pay's own clients over TLS.


async def test_the_psp_relay_publishes_over_tls_to_a_cashier(
    secure: tuple[SecureMosquitto, Accounts], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, accounts = secure
    monkeypatch.setenv("SCAN2PAY_MQTT_CA", str(broker.ca))
    psp = await start_psp(
        str(tmp_path / "psp.db"),
        mqtt_url=f"mqtts://psp:{accounts['psp']}@127.0.0.1:{broker.tls_port}",
        sweep_interval=0.05,
    )
    try:
        shop = await psp.merchant()
        password = mqtt_accounts.create_account(broker.dir, mqtt_accounts.cashier_account(shop.id))
        broker.reload()
        cashier = _connect_soon(broker, shop.id, password)
        try:
            assert cashier.subscribe(events_topic(shop.id)) == 1
            # For a terminal: the relay also sends the terminal its copy.
            checkout = await psp.checkout(shop, terminal_id="till-1")
            status, _ = await psp.call(
                "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=shop.auth
            )
            assert status == 200
            # In a thread: the relay publishes from this test's event loop.
            got = await asyncio.to_thread(cashier.next, 10)
            event = CheckoutEvent.from_json(got.payload)
            assert (event.type, event.checkout.id) == ("checkout.cancelled", checkout["id"])
            # Marked sent: the broker let the relay write the terminal's copy too.
            await until(psp.outbox_drained, what="every event published", every=0.02)
        finally:
            cashier.close()
    finally:
        await stop_psp(psp)


def test_another_account_cannot_throw_a_terminal_off_the_broker(
    secure: tuple[SecureMosquitto, Accounts], login: Login, tmp_path: Path
) -> None:
    """A broker drops a client when another connects with its client id. The
    terminal's id is no longer something another account can know: merchant
    B's cashier, connecting with the id the terminal used to have, leaves it
    connected, and its last will ("offline") unsaid."""
    broker, accounts = secure
    username = f"{A}/till-1"
    mqtt_url = (
        f"mqtts://{quote(username, safe='')}:{quote(accounts[username], safe='')}"
        f"@127.0.0.1:{broker.tls_port}"
    )
    watcher = login(A)
    assert watcher.subscribe(state_topic(A, "till-1")) == 1
    log = tmp_path / "terminal.log"
    with log.open("ab") as output:
        terminal = subprocess.Popen(
            [
                *(str(BIN / "scan2pay-terminal"), "--mqtt", mqtt_url, "--merchant", A),
                *("--terminal", "till-1", "--display", f"png:{tmp_path / 'frames'}"),
            ],
            stdout=output,
            stderr=output,
            env={**os.environ, "SCAN2PAY_MQTT_CA": str(broker.ca)},
        )
    try:
        up = watcher.states_until(
            lambda state: state.online and state.screen == "idle", 15, skip_invalid=True
        )
        assert up, "the terminal never said it was up"
        assert up[-1].screen == "idle", up
        for guessed in (f"scan2pay-terminal-{A}-till-1", f"scan2pay-terminal-{A}-till-1-"):
            Client(broker, B, accounts[B], client_id=guessed).close()
        seen = watcher.states_until(lambda state: False, 3, skip_invalid=True)
        assert all(state.online for state in seen), seen
        assert terminal.poll() is None
        assert "reconnecting" not in log.read_text()
    finally:
        terminal.terminate()
        terminal.wait(10)
