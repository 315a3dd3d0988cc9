"""``scan2pay-terminal doctor`` as an installer runs it, against real
processes: mosquitto with examples/mosquitto's config and ACL, accounts made
by psp-server's account management, and a real ``psp-server serve``. All
checks pass on a terminal set up the documented way; then each thing an
installer gets wrong gives its FAIL line with a hint, and a non-zero exit.

``timedatectl`` is the one system program stood in for (by a script first on
PATH): the machine's own clock state is not the test's to choose."""

from __future__ import annotations

import getpass
import glob
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from psp_server.mqtt import accounts as mqtt_accounts
from scan2pay_common.signing import SigningKey
from scan2pay_common.topics import display_topic, events_topic, terminal_events_topic
from terminal.doctor.broker import account_mismatch
from terminal.doctor.clock import SYNCED_FLAG
from tests.support.broker import free_port, mosquitto_binary, wait_for_port
from tests.support.process import PspProcess, create_merchant, end_process, run_cli
from tests.support.secure_broker import Certs, Client, SecureMosquitto, make_certs

pytestmark = pytest.mark.broker

BIN = Path(sys.executable).parent
TERMINAL, OTHER = "till-1", "till-2"
LINE = re.compile(r"(ok|FAIL|skip) +([a-z ]+?): (.*)")
ALL_CHECKS = [
    "config", "clock", "clock skew", "display", "fonts", "broker", "acl", "psp", "psp key",
]  # fmt: skip
DOCTOR_SECONDS = 8.0  # a few seconds, whatever is down


@dataclass
class Setup:
    broker: SecureMosquitto
    passwords: dict[str, str]
    psp: PspProcess
    psp_key: str
    merchant: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Setup]:
    db = tmp_path_factory.mktemp("psp") / "psp.db"
    merchant = create_merchant(db)["merchant_id"]
    shown = run_cli("keys", "show", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    broker = SecureMosquitto(tmp_path_factory.mktemp("mosquitto"), certs)
    passwords = {
        account.username: mqtt_accounts.create_account(broker.dir, account)
        for account in [
            mqtt_accounts.terminal_account(merchant, TERMINAL),
            mqtt_accounts.terminal_account(merchant, OTHER),
            mqtt_accounts.cashier_account(merchant),
        ]
    }
    broker.start()
    psp = PspProcess(db)
    try:
        yield Setup(broker, passwords, psp, shown.stdout.strip().splitlines()[-1], merchant)
    finally:
        psp.stop()
        broker.stop()


@pytest.fixture
def synced_clock(tmp_path: Path) -> dict[str, str]:
    """An environment whose timedatectl says the clock is synchronised."""
    return _timedatectl(tmp_path, 'echo "yes"')


def _timedatectl(tmp_path: Path, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "system-bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "timedatectl"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def terminal_config(
    setup: Setup, tmp_path: Path, *, username: str | None = None, **overrides: Any
) -> Path:
    """A config file as docs/terminal.md sets one up: mqtts:// with the
    terminal's own account, the PSP's URL and key, here a PNG display."""
    username = username or mqtt_accounts.terminal_username(setup.merchant, TERMINAL)
    userinfo = mqtt_accounts.userinfo(username, setup.passwords[username])
    settings: dict[str, Any] = {
        "mqtt": f"mqtts://{userinfo}@127.0.0.1:{setup.broker.tls_port}",
        "merchant": setup.merchant,
        "terminal": TERMINAL,
        "display": f"png:{tmp_path / 'frames'}",
        "psp_url": setup.psp.public_url,
        "psp_public_key": setup.psp_key,
    }
    settings.update(overrides)
    path = tmp_path / "terminal.toml"
    path.write_text(
        "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items() if v is not None)
    )
    return path


@dataclass
class Report:
    code: int
    lines: dict[str, tuple[str, str]]  # check -> (status, rest of its line)
    checks: dict[str, dict[str, Any]]  # check -> its JSON object
    text: str
    seconds: float


def doctor(setup: Setup, config: Path, *flags: str, env: dict[str, str] | None = None) -> Report:
    """Runs the doctor twice, for its lines and for its JSON; both must agree."""
    environment = {**os.environ, "SCAN2PAY_MQTT_CA": str(setup.broker.ca), **(env or {})}
    command = [str(BIN / "scan2pay-terminal"), "doctor", "--config", str(config), *flags]
    started = time.monotonic()
    text = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
    seconds = time.monotonic() - started
    as_json = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=environment, timeout=60
    )
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    lines: dict[str, tuple[str, str]] = {}
    for line in text.stdout.splitlines():
        match = LINE.fullmatch(line)
        assert match, f"not a doctor line: {line!r}\n{text.stdout}{text.stderr}"
        lines[match.group(2)] = (match.group(1), match.group(3))
    document = json.loads(as_json.stdout)
    checks = {check["check"]: check for check in document["checks"]}
    assert list(lines) == list(checks) == ALL_CHECKS, text.stdout
    assert document["ok"] == (text.returncode == 0)
    for name, (label, _) in lines.items():
        assert {"ok": "ok", "fail": "FAIL", "skip": "skip"}[checks[name]["status"]] == label
    return Report(text.returncode, lines, checks, text.stdout, seconds)


def assert_fails(report: Report, check: str, *fragments: str, hint: str) -> None:
    """Its FAIL line says what and gives a hint; the doctor exits non-zero."""
    assert report.code == 1, report.text
    status, rest = report.lines[check]
    assert status == "FAIL", report.text
    for fragment in fragments:
        assert fragment in rest, report.text
    assert f"(hint: {hint}" in rest, report.text
    assert report.checks[check]["hint"].startswith(hint)


def test_a_terminal_set_up_as_documented_passes_every_check(
    setup: Setup, tmp_path: Path, synced_clock: dict[str, str]
) -> None:
    # The cashier's last display command waits on the topic, retained.
    cashier = Client(setup.broker, setup.merchant, setup.passwords[setup.merchant])
    try:
        cashier.publish(display_topic(setup.merchant, TERMINAL), '{"type":"idle"}', retain=True)
    finally:
        cashier.close()
    report = doctor(setup, terminal_config(setup, tmp_path), env=synced_clock)
    assert report.code == 0, report.text
    assert {name: status for name, (status, _) in report.lines.items()} == dict.fromkeys(
        ALL_CHECKS, "ok"
    ), report.text
    assert report.checks["broker"]["detail"].endswith("(TLS): logged in")
    assert "a retained display command arrived" in report.lines["acl"][1]
    assert "NTPSynchronized=yes" in report.lines["clock"][1]
    assert "the PSP's clock" in report.lines["clock skew"][1]
    assert setup.passwords[mqtt_accounts.terminal_username(setup.merchant, TERMINAL)] not in (
        report.text
    )
    assert report.seconds < DOCTOR_SECONDS


def test_a_wrong_password(setup: Setup, tmp_path: Path, synced_clock: dict[str, str]) -> None:
    username = mqtt_accounts.terminal_username(setup.merchant, TERMINAL)
    wrong = mqtt_accounts.userinfo(username, "not-the-password")
    config = terminal_config(
        setup, tmp_path, mqtt=f"mqtts://{wrong}@127.0.0.1:{setup.broker.tls_port}"
    )
    report = doctor(setup, config, env=synced_clock)
    assert_fails(report, "broker", "refused the login", hint="use the username and password")
    assert report.lines["acl"] == ("skip", "not logged in")
    assert report.lines["psp"][0] == "ok"  # the rest is still checked


def test_an_account_whose_acl_refuses_the_display_topic(
    setup: Setup, tmp_path: Path, synced_clock: dict[str, str]
) -> None:
    """Another terminal's account: the example ACL gives it that terminal's
    topics only. (mosquitto's ACL file grants the SUBSCRIBE itself and drops
    the messages, so the doctor reads the account's name.)"""
    config = terminal_config(
        setup,
        tmp_path,
        username=mqtt_accounts.terminal_username(setup.merchant, OTHER),
    )
    report = doctor(setup, config, env=synced_clock)
    assert report.lines["broker"][0] == "ok"
    assert_fails(
        report,
        "acl",
        f"is terminal {OTHER} of {setup.merchant}",
        f"this terminal is {setup.merchant}/{TERMINAL}",
        hint="the account's ACL must let it read",
    )


def test_a_broker_that_refuses_the_subscription_in_its_suback(
    tmp_path: Path, setup: Setup, synced_clock: dict[str, str]
) -> None:
    """mosquitto's dynamic-security plugin checks SUBSCRIBE: an account let
    read another terminal's topics gets 0x80 for this one's."""
    broker = DynsecMosquitto(tmp_path / "dynsec")
    try:
        password = broker.terminal_account("lane-device-7", setup.merchant, OTHER)
        config = terminal_config(
            setup,
            tmp_path,
            mqtt=f"mqtt://lane-device-7:{password}@127.0.0.1:{broker.port}",
        )
        report = doctor(setup, config, env=synced_clock)
    finally:
        broker.stop()
    assert report.lines["broker"][0] == "ok"
    assert "no TLS" in report.lines["broker"][1]
    assert_fails(
        report,
        "acl",
        "the broker refused to subscribe to its display, terminal events topics",
        hint="the account's ACL must let it read",
    )


def test_the_psp_unreachable(setup: Setup, tmp_path: Path, synced_clock: dict[str, str]) -> None:
    config = terminal_config(setup, tmp_path, psp_url=f"http://127.0.0.1:{free_port()}")
    report = doctor(setup, config, env=synced_clock)
    assert_fails(report, "psp", "cannot reach", "/v1/keys", hint="check psp_url")
    assert report.lines["psp key"] == ("skip", "the PSP did not answer")
    assert report.lines["clock skew"] == ("skip", "the PSP did not answer")


def test_a_wrong_psp_key(setup: Setup, tmp_path: Path, synced_clock: dict[str, str]) -> None:
    other = SigningKey.generate().public
    config = terminal_config(setup, tmp_path, psp_public_key=other.text)
    report = doctor(setup, config, env=synced_clock)
    assert report.lines["psp"][0] == "ok"
    assert_fails(
        report,
        "psp key",
        "the PSP signs with k_",
        f"psp_public_key holds {other.kid}",
        hint="set psp_public_key to what `psp-server keys show` prints",
    )


def test_no_psp_key_at_all(setup: Setup, tmp_path: Path, synced_clock: dict[str, str]) -> None:
    report = doctor(setup, terminal_config(setup, tmp_path, psp_public_key=None), env=synced_clock)
    assert_fails(
        report,
        "psp key",
        f"no psp_public_key is set; the PSP signs with {setup.psp_key}",
        hint="set psp_public_key",
    )


def test_a_png_folder_that_cannot_be_written(
    setup: Setup, tmp_path: Path, synced_clock: dict[str, str]
) -> None:
    # Under a file: no folder can be made there, whoever runs the test.
    (tmp_path / "a-file").write_text("")
    config = terminal_config(setup, tmp_path, display=f"png:{tmp_path / 'a-file' / 'frames'}")
    report = doctor(setup, config, env=synced_clock)
    assert report.lines["config"][0] == "ok"
    assert_fails(report, "display", "cannot write frames to", hint="make the folder writable")


@pytest.mark.parametrize(
    "display",
    [
        {"display": "ssd1306:i2c:99:0x3C"},
        {"display": "ssd1306", "interface": "i2c", "i2c_port": 99, "i2c_address": "0x3C"},
    ],
)
def test_an_i2c_bus_that_does_not_exist(
    setup: Setup, tmp_path: Path, synced_clock: dict[str, str], display: dict[str, Any]
) -> None:
    report = doctor(setup, terminal_config(setup, tmp_path, **display), env=synced_clock)
    assert "display ssd1306:i2c:99:0x3C" in report.lines["config"][1]
    assert_fails(
        report, "display", "ssd1306:i2c:99:0x3C: there is no /dev/i2c-99", hint="enable I2C"
    )


def test_a_config_with_two_mistakes_reports_both(
    setup: Setup, tmp_path: Path, synced_clock: dict[str, str]
) -> None:
    config = terminal_config(
        setup, tmp_path, mqtt="mqtts://lane:hunter2-secret@127.0.0.1:eighty", idle_after="soon"
    )
    report = doctor(setup, config, env=synced_clock)
    assert_fails(
        report,
        "config",
        "2 problem(s)",
        "mqtt (--mqtt, SCAN2PAY_MQTT): 'mqtts://lane:[redacted]@127.0.0.1:eighty'",
        "idle_after (--idle-after, SCAN2PAY_IDLE_AFTER)",
        hint="correct each setting named",
    )
    assert "hunter2" not in report.text
    assert "hunter2" not in json.dumps(report.checks)
    # What does not need the rest of the config is still checked.
    assert report.lines["display"][0] == "ok"
    assert report.lines["fonts"][0] == "ok"
    for check in ("broker", "acl", "psp", "psp key", "clock skew"):
        assert report.lines[check] == ("skip", "the config did not load"), report.text


def test_a_clock_the_system_says_is_not_synchronised(setup: Setup, tmp_path: Path) -> None:
    report = doctor(setup, terminal_config(setup, tmp_path), env=_timedatectl(tmp_path, "echo no"))
    assert_fails(report, "clock", "NTPSynchronized=no", hint="a Pi has no real-time clock")


def test_a_clock_state_nobody_tells_is_unknown_not_failed(setup: Setup, tmp_path: Path) -> None:
    """As in a container: timedatectl cannot reach systemd."""
    silent = _timedatectl(tmp_path, 'echo "Failed to connect to bus" >&2; exit 1')
    report = doctor(setup, terminal_config(setup, tmp_path), env=silent)
    if SYNCED_FLAG.exists():  # systemd-timesyncd runs here and has synchronised
        assert report.lines["clock"][0] == "ok"
    else:
        assert report.lines["clock"][0] == "skip"
        assert "unknown here" in report.lines["clock"][1]
    assert report.code == 0, report.text


def test_the_doctor_answers_in_seconds_when_nothing_answers(setup: Setup, tmp_path: Path) -> None:
    """A broker and a PSP that take the connection and say nothing, and a
    timedatectl that hangs: every check has its timeout."""
    with socket.socket() as mute_broker, socket.socket() as mute_psp:
        for mute in (mute_broker, mute_psp):
            mute.bind(("127.0.0.1", 0))
            mute.listen(8)
        config = terminal_config(
            setup,
            tmp_path,
            mqtt=f"mqtts://u:p@127.0.0.1:{mute_broker.getsockname()[1]}",
            psp_url=f"http://127.0.0.1:{mute_psp.getsockname()[1]}",
        )
        report = doctor(setup, config, env=_timedatectl(tmp_path, "exec sleep 30"))
    assert report.seconds < DOCTOR_SECONDS, report.text
    assert_fails(report, "broker", "cannot connect", hint="check the broker's host and port")
    assert_fails(report, "psp", "cannot reach", "timed out", hint="check psp_url")
    assert report.lines["clock"][0] in ("skip", "ok")


@pytest.mark.parametrize(
    ("username", "problem"),
    [
        ("mer_a/till-1", None),
        ("terminal-lane-1", None),  # named by the operator: the broker's word only
        ("mer_a/till-2", "is terminal till-2 of mer_a; this terminal is mer_a/till-1"),
        ("mer_b/till-1", "is terminal till-1 of mer_b"),
        ("mer_a", "is the merchant's cashiers'"),
        ("psp", "is the PSP's"),
    ],
)
def test_the_accounts_psp_server_names(username: str, problem: str | None) -> None:
    assert mqtt_accounts.terminal_username("mer_a", "till-1") == "mer_a/till-1"
    found = account_mismatch(username, "mer_a", "till-1")
    assert (found is None) == (problem is None)
    if problem is not None:
        assert found is not None
        assert problem in found


# mosquitto with its dynamic-security plugin.

ADMIN = "dynsec-admin"
ADMIN_PASSWORD = "dynsec-admin-password"  # noqa: S105 - a throwaway broker's, for this test
DYNSEC_HINT = (
    "mosquitto's dynamic-security plugin and mosquitto_ctrl are not installed;"
    " Debian's mosquitto package has both: sudo apt-get install mosquitto"
)


class DynsecMosquitto:
    """A broker whose accounts and rights are the dynamic-security plugin's,
    set up with mosquitto_ctrl as its documentation does."""

    def __init__(self, workdir: Path) -> None:
        # Debian puts it under /usr/lib/<multiarch triplet>/; a source build under /usr/lib/.
        plugins = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob(
            "/usr/lib/mosquitto_dynamic_security.so"
        )
        self.ctrl_binary = shutil.which("mosquitto_ctrl")
        if not plugins or self.ctrl_binary is None:
            pytest.fail(DYNSEC_HINT, pytrace=False)
        workdir.mkdir(parents=True)
        self.port = free_port()
        state = workdir / "dynamic-security.json"
        subprocess.run(
            [self.ctrl_binary, "dynsec", "init", str(state), ADMIN, ADMIN_PASSWORD],
            check=True,
            capture_output=True,
        )
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"plugin {plugins[0]}\n"
            f"plugin_opt_config_file {state}\n"
            f"user {getpass.getuser()}\n"
            "persistence false\n"
        )
        self.log = (workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=self.log, stderr=self.log
        )
        wait_for_port(self.port)

    def ctrl(self, *args: str) -> None:
        assert self.ctrl_binary is not None
        subprocess.run(
            [
                *(self.ctrl_binary, "-h", "127.0.0.1", "-p", str(self.port)),
                *("-u", ADMIN, "-P", ADMIN_PASSWORD, "dynsec", *args),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def terminal_account(self, username: str, merchant: str, terminal: str) -> str:
        """An account that may read ``terminal``'s topics; its password."""
        password = f"pw-{username}"
        self.ctrl("createClient", username, "-p", password)
        self.ctrl("createRole", username)
        for topic in (
            display_topic(merchant, terminal),
            terminal_events_topic(merchant, terminal),
            events_topic(merchant),
        ):
            self.ctrl("addRoleACL", username, "subscribeLiteral", topic, "allow")
        self.ctrl("addClientRole", username, username)
        return password

    def stop(self) -> None:
        end_process(self.process)
        self.log.close()
