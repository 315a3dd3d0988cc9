"""deploy/terminal.toml.example, the docs and examples/mosquitto agree.

A terminal is set up the documented way: mosquitto runs examples/mosquitto's
config and ACL (paths and ports moved to a temporary folder), the terminal's
broker account is made with ``psp-server terminal create --mosquitto-dir``,
and the real daemon runs on a copy of deploy/terminal.toml.example with only
its documented placeholders filled in, installed 0600. It connects over TLS
and goes online, and the broker refuses its login another terminal's topics."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scan2pay_common.messages import TerminalState
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import (
    all_state_topics,
    display_topic,
    state_topic,
)
from tests.support.broker import free_port
from tests.support.process import create_merchant, run_cli
from tests.support.secure_broker import SUBACK_FAILURE, Client, SecureMosquitto, make_certs

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "terminal.toml.example"
BIN = Path(sys.executable).parent
DEPLOYED_DIR = "/etc/scan2pay/"
LANE, OTHER_LANE = "lane-1", "lane-2"


def documented_placeholders(text: str) -> list[str]:
    """The placeholders the example's header lists, one a line: ``#   NAME  what``."""
    return re.findall(r"^#   ([A-Z][A-Z_]+) {2,}\S", text, flags=re.MULTILINE)


def create_account(*args: str) -> dict[str, str]:
    """``psp-server terminal|cashier create ...`` as the docs run it: what it prints."""
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    return printed


def test_a_terminal_set_up_from_the_example_connects_and_keeps_to_its_own_topics(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path / "certs")
    broker = SecureMosquitto(tmp_path / "mosquitto", certs)
    db = tmp_path / "psp.db"
    merchant = create_merchant(db)["merchant_id"]
    folder = str(broker.dir)
    made = create_account(
        *("terminal", "create", "--merchant", merchant, "--terminal", LANE),
        *("--mosquitto-dir", folder),
    )
    create_account(
        *("terminal", "create", "--merchant", merchant, "--terminal", OTHER_LANE),
        *("--mosquitto-dir", folder),
    )
    cashier_login = create_account(
        "cashier", "create", "--merchant", merchant, "--mosquitto-dir", folder
    )
    keys = run_cli("keys", "show", "--db", str(db))
    assert keys.returncode == 0, keys.stderr

    # /etc/scan2pay, with the broker's CA copied in as the example's header says.
    etc = tmp_path / "etc-scan2pay"
    etc.mkdir()
    shutil.copy(certs.ca, etc / "mqtt-ca.crt")
    text = EXAMPLE.read_text()
    fills = {
        "MERCHANT_ID": merchant,
        "TERMINAL_ID": LANE,
        "PASSWORD": made["password"],
        "BROKER_HOST": "127.0.0.1",  # as the test broker's certificate names it
        "PSP_URL": f"http://127.0.0.1:{free_port()}",  # no PSP: the terminal lives without
        "PSP_PUBLIC_KEY": keys.stdout.splitlines()[-1],
    }
    assert documented_placeholders(text) == list(fills)
    for placeholder, value in fills.items():
        text = text.replace(placeholder, value)
    # The test broker listens where the example's listens on 8883, and its
    # /etc/scan2pay is a temporary folder: the same moves as for the broker.
    assert '@127.0.0.1:8883"' in text
    text = text.replace('@127.0.0.1:8883"', f'@127.0.0.1:{broker.tls_port}"')
    text = text.replace(DEPLOYED_DIR, f"{etc}/")
    settings = tomllib.loads(text)
    target = MqttTarget.parse(settings["mqtt"])
    # The example's login is the one `psp-server terminal create` prints.
    assert (target.username, target.password) == (made["username"], made["password"])
    printed_url = made["in an mqtts:// URL"]
    assert settings["mqtt"].startswith(printed_url.removesuffix("@HOST"))
    assert target.tls

    # `install -m 0600 -o scan2pay`: written private from its first byte.
    config = etc / "terminal.toml"
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    broker.start()
    cashier = Client(broker, merchant, cashier_login["password"])
    terminal = None
    try:
        assert cashier.subscribe(all_state_topics(merchant)) == 1
        # Only the file: no SCAN2PAY_* variable of this environment counts.
        env = {key: value for key, value in os.environ.items() if not key.startswith("SCAN2PAY_")}
        log_path = tmp_path / "terminal.log"
        with log_path.open("ab") as log:
            terminal = subprocess.Popen(
                [
                    *(str(BIN / "scan2pay-terminal"), "--config", str(config)),
                    # Flags win over the file: the test's display for the panel.
                    *("--display", f"png:{tmp_path / 'frames'}"),
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        state = cashier.until_state(lambda s: s.online and s.screen == "idle", "online idle")
        assert state.checkout_id is None
        assert f"connected to mqtts://{made['username']}@127.0.0.1" in log_path.read_text()

        # Its login reads its own display and not another terminal's. The
        # ACL holds back what it may not read (mosquitto grants every
        # SUBSCRIBE with MQTT 3.1.1): the marker after it arrives alone.
        own = Client(broker, target.username, target.password)
        try:
            for topic in (display_topic(merchant, OTHER_LANE), display_topic(merchant, LANE)):
                assert own.subscribe(topic) in (1, SUBACK_FAILURE), topic
            cashier.publish(display_topic(merchant, OTHER_LANE), "not yours")
            cashier.publish(display_topic(merchant, LANE), "marker")
            got = own.until("marker")
            assert [m.payload for m in got] == [b"marker"], got
            # Nor does it write another terminal's state: the broker drops
            # it, and the marker after it on its own topic arrives alone.
            forged = TerminalState(online=True, screen="paid", checkout_id=None, displayed_at=None)
            own.publish(state_topic(merchant, OTHER_LANE), forged.to_json().decode())
            own.publish(state_topic(merchant, LANE), "marker")
            got = cashier.until("marker")
            assert [m.topic for m in got if m.topic == state_topic(merchant, OTHER_LANE)] == []
        finally:
            own.close()
    finally:
        if terminal is not None:
            terminal.terminate()
            assert terminal.wait(15) == 0
        cashier.close()
        broker.stop()


def test_no_doc_copies_the_terminal_s_settings_readable_by_all() -> None:
    """The settings hold the broker password: the docs install them 0600,
    owned by the service user, never with a plain cp."""
    install_line = (
        "install -m 0600 -o scan2pay -g scan2pay terminal.toml /etc/scan2pay/terminal.toml"
    )
    assert install_line in EXAMPLE.read_text()
    assert install_line in (REPO / "docs" / "pi.md").read_text()
    for path in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", EXAMPLE]:
        for line in path.read_text().splitlines():
            assert not re.search(r"\bcp\b.*terminal\.toml", line), (path.name, line)


def test_a_ca_file_that_does_not_load_is_a_configuration_error(tmp_path: Path) -> None:
    from terminal.config import ConfigError, load

    base = {"merchant": "mer_x", "terminal": "lane-1", "mqtt": "mqtts://broker.example"}
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate\n")
    for path, problem in [
        (tmp_path / "missing.crt", "no such file"),
        (not_pem, "not a PEM certificate"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load({**base, "mqtt_ca": str(path)}, env={})
        (message,) = caught.value.problems
        assert message.startswith(f"mqtt_ca (--mqtt-ca, SCAN2PAY_MQTT_CA): {path}: {problem}")
    certs = make_certs(tmp_path / "certs")
    assert load({**base, "mqtt_ca": str(certs.ca)}, env={}).mqtt_ca == str(certs.ca)
