"""deploy/pi/install.sh, run for real into a throwaway root.

The commands that would change this machine (apt-get, raspi-config,
useradd, usermod, userdel, chown to a user that is not here, systemctl,
python3 -m venv, the venv's pip, runuser) are stand-ins first on PATH that
record their arguments; everything else (mkdir, mktemp, cat, mv, cp, rm) is
the real thing, writing under the root. So the tests read the files the
script writes and the commands it runs, in order."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware.registry import parse_spec

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "pi" / "install.sh"
BASH = shutil.which("bash") or "/bin/bash"
UNIT = REPO / "deploy" / "systemd" / "scan2pay-terminal.service"
PSP_URL = "https://pay.example.com"
SHELLCHECK_HINT = (
    "shellcheck is not installed; the tests check deploy/pi/install.sh with it. "
    "Install it with `sudo apt-get install shellcheck` (make test does this when run as root)."
)

# One stand-in, installed under each command's name; what it does beyond
# recording depends on that name.
STAND_IN = """\
#!{python}
import json, os, sys
from pathlib import Path

name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps([name, *args]) + "\\n")
state = Path(os.environ["STUB_STATE"])
if name == "id":
    if args == ["-u"]:
        print(0)
    elif not (state / ("user-" + args[-1])).exists():
        sys.exit(1)
elif name == "useradd":
    (state / ("user-" + args[-1])).touch()
elif name == "userdel":
    (state / ("user-" + args[-1])).unlink()
elif name == "getent":
    if args[-1] in os.environ.get("STUB_MISSING_GROUPS", "").split():
        sys.exit(2)
    print(args[-1] + ":x:997:")
elif name == "python3" and args[:2] == ["-m", "venv"]:
    bin = Path(args[-1]) / "bin"
    bin.mkdir(parents=True)
    me = Path(sys.argv[0]).read_text()
    (bin / "python").write_text(me)
    (bin / "python").chmod(0o755)
elif name == "python" and args[:3] == ["-m", "pip", "install"]:
    program = Path(sys.argv[0]).parent / "scan2pay-terminal"
    program.write_text(Path(sys.argv[0]).read_text())
    program.chmod(0o755)
elif name == "runuser" and "pair" in args:
    # Pairing writes the terminal's ids and login into its settings.
    config = args[args.index("--config") + 1]
    with open(config, "a") as out:
        out.write('merchant = "mer_paired"\\nterminal = "lane-1"\\n')
"""
COMMANDS = (
    *("apt-get", "raspi-config", "id", "getent", "useradd", "usermod", "userdel", "groupadd"),
    *("chown", "systemctl", "python3", "runuser"),
)
# What only looks: a dry run may ask these.
QUERIES = {"id", "getent"}


@dataclass
class Machine:
    """A throwaway root, and the stand-ins' record of what ran."""

    root: Path
    log: Path
    env: dict[str, str]

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BASH, str(SCRIPT), "--root", str(self.root), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )

    def ran(self) -> list[list[str]]:
        """Every command run since the last call."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.write_text("")
        return [json.loads(line) for line in lines]

    def files(self) -> list[str]:
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*"))


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for command in COMMANDS:
        stub = stubs / command
        stub.write_text(STAND_IN.format(python=sys.executable))
        stub.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "ran.jsonl"),
        "STUB_STATE": str(state),
    }
    return Machine(root, tmp_path / "ran.jsonl", env)


def in_order(ran: list[list[str]], *expected: list[str]) -> None:
    """``expected`` appear in ``ran`` in this order (others between them)."""
    position = 0
    for command in expected:
        try:
            position = ran.index(command, position) + 1
        except ValueError:
            raise AssertionError(f"{command} not run (in order) in {ran}") from None


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_dry_run_prints_each_step_and_changes_nothing(machine: Machine) -> None:
    result = machine.install("--dry-run", "--psp-url", PSP_URL, "--name", "Café Lumière")
    assert result.returncode == 0, result.stderr
    assert machine.files() == []
    assert {command[0] for command in machine.ran()} <= QUERIES
    out = result.stdout
    root = machine.root
    for line in (
        "would run: apt-get install -y --no-install-recommends python3 python3-venv"
        " python3-spidev i2c-tools",
        "would run: raspi-config nonint do_i2c 0",
        "would run: raspi-config nonint do_spi 0",
        "would run: useradd --system --user-group --home-dir /var/lib/scan2pay",
        "would run: usermod --append --groups i2c,spi,gpio,dialout,audio scan2pay",
        "would make /etc/scan2pay (mode 0770, owner root:scan2pay)",
        f"would run: python3 -m venv --system-site-packages {root}/opt/scan2pay/.venv",
        f"would run: {root}/opt/scan2pay/.venv/bin/python -m pip install {REPO}[terminal,pi]",
        "would write /etc/scan2pay/terminal.toml (mode 0600, owner scan2pay:scan2pay):",
        '| psp_url = "https://pay.example.com"',
        '| name = "Café Lumière"',
        "would write /etc/systemd/system/scan2pay-terminal.service (mode 0644, owner root:root):",
        "| WatchdogSec=30",
        "| TimeoutStartSec=90",
        "would run: systemctl enable scan2pay-terminal.service",
        # The service pairs by itself: nothing waits in the foreground.
        "the display shows a code: approve it on the merchant board",
        "would run: systemctl restart scan2pay-terminal.service",
    ):
        assert line in out, (line, out)
    steps = re.findall(r"^==> (.*)$", out, flags=re.MULTILINE)
    assert steps == [
        "Installing Debian's packages",
        "Enabling I2C and SPI",
        "Creating the scan2pay user",
        "Making the folders",
        "Installing scan2pay's terminal into /opt/scan2pay",
        "Writing /etc/scan2pay/terminal.toml",
        "Installing the systemd unit",
        "Pairing",
        "Starting the terminal",
        "Done",
    ]


def test_an_install_writes_the_files_runs_the_steps_and_starts_pairing(machine: Machine) -> None:
    result = machine.install("--psp-url", PSP_URL, "--display", "st7789:spi:0:0,dc=24,rst=25")
    assert result.returncode == 0, result.stdout + result.stderr
    root = machine.root
    venv = f"{root}/opt/scan2pay/.venv"
    config = root / "etc/scan2pay/terminal.toml"
    in_order(
        machine.ran(),
        ["apt-get", "update"],
        [
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "python3",
            "python3-venv",
            "python3-spidev",
            "i2c-tools",
            "ca-certificates",
            "espeak-ng",
            "alsa-utils",
            "libopenjp2-7",
            "libjpeg62-turbo",
            "libtiff6",
            "libfreetype6",
            "liblcms2-2",
            "libwebp7",
            "libxcb1",
        ],
        ["raspi-config", "nonint", "do_i2c", "0"],
        ["raspi-config", "nonint", "do_spi", "0"],
        [
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            "/var/lib/scan2pay",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "scan2pay checkout terminal",
            "scan2pay",
        ],
        ["usermod", "--append", "--groups", "i2c,spi,gpio,dialout,audio", "scan2pay"],
        ["chown", "root:scan2pay", f"{root}/etc/scan2pay"],
        ["chown", "scan2pay:scan2pay", f"{root}/var/lib/scan2pay"],
        ["python3", "-m", "venv", "--system-site-packages", venv],
        ["python", "-m", "pip", "install", f"{REPO}[terminal,pi]"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "scan2pay-terminal.service"],
        ["systemctl", "restart", "scan2pay-terminal.service"],
    )
    # The settings: private from the first byte, the service user's.
    assert mode(config) == 0o600
    assert mode(root / "etc/scan2pay") == 0o770
    assert mode(root / "var/lib/scan2pay") == 0o750
    settings = tomllib.loads(config.read_text())
    assert settings["display"] == "st7789:spi:0:0,dc=24,rst=25"
    assert settings["psp_url"] == PSP_URL
    parse_spec(settings["display"])
    unit = root / "etc/systemd/system/scan2pay-terminal.service"
    assert unit.read_bytes() == UNIT.read_bytes()
    assert mode(unit) == 0o644
    drop_in = root / "etc/systemd/system/systemd-time-wait-sync.service.d/scan2pay.conf"
    assert "[Service]\nTimeoutStartSec=90\n" in drop_in.read_text()
    assert (root / "opt/scan2pay/docs/pi.md").read_bytes() == (REPO / "docs/pi.md").read_bytes()
    leftovers = [name for name in machine.files() if re.search(r"\.[A-Za-z0-9]{6}$", name)]
    assert leftovers == []  # no temporary file left behind


def test_groups_a_system_lacks_are_made_for_the_unit_to_start(machine: Machine) -> None:
    """SupplementaryGroups= names all five: a missing one would keep the
    service from starting (status 216/GROUP), again and again."""
    machine.env["STUB_MISSING_GROUPS"] = "spi gpio"
    result = machine.install("--psp-url", PSP_URL)
    assert result.returncode == 0, result.stderr
    ran = machine.ran()
    made = [command for command in ran if command[0] == "groupadd"]
    assert made == [["groupadd", "--system", "spi"], ["groupadd", "--system", "gpio"]]
    in_order(
        ran,
        ["groupadd", "--system", "gpio"],
        ["usermod", "--append", "--groups", "i2c,spi,gpio,dialout,audio", "scan2pay"],
    )


def test_installing_again_keeps_the_settings_and_redoes_nothing_done(machine: Machine) -> None:
    assert machine.install("--psp-url", PSP_URL).returncode == 0
    assert "useradd" in {command[0] for command in machine.ran()}
    config = machine.root / "etc/scan2pay/terminal.toml"
    # The service paired itself meanwhile: its settings name the merchant.
    with config.open("a") as settings:
        settings.write('merchant = "mer_paired"\nterminal = "lane-1"\n')
    paired = config.read_text()
    files = machine.files()

    again = machine.install("--psp-url", PSP_URL, "--display", "ili9341:spi:0:0")
    assert again.returncode == 0, again.stderr
    second = machine.ran()
    assert config.read_text() == paired  # not the new --display: the owner's file stays
    assert mode(config) == 0o600
    assert machine.files() == files
    names = [command[0] for command in second]
    assert "useradd" not in names
    assert ["python3", "-m", "venv", f"{machine.root}/opt/scan2pay/.venv"] not in second
    assert "runuser" not in names  # paired already
    assert ["systemctl", "restart", "scan2pay-terminal.service"] in second
    assert "already" in again.stdout


def test_an_upgrade_reinstalls_and_restarts_and_keeps_the_settings(machine: Machine) -> None:
    refused = machine.install("--upgrade")
    assert refused.returncode == 2
    assert "no terminal installed" in refused.stderr
    assert machine.ran() == []
    assert machine.files() == []

    assert machine.install("--psp-url", PSP_URL).returncode == 0
    machine.ran()
    config = machine.root / "etc/scan2pay/terminal.toml"
    before = config.read_text()
    result = machine.install("--upgrade")
    assert result.returncode == 0, result.stderr
    ran = machine.ran()
    in_order(
        ran,
        ["python", "-m", "pip", "install", "--upgrade", f"{REPO}[terminal,pi]"],
        ["python", "-m", "pip", "install", "--no-deps", "--force-reinstall", str(REPO)],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "scan2pay-terminal.service"],
    )
    names = {command[0] for command in ran}
    assert names.isdisjoint({"useradd", "raspi-config", "runuser", "python3"})
    assert config.read_text() == before


def test_uninstall_keeps_the_settings_unless_purged(machine: Machine) -> None:
    assert machine.install("--psp-url", PSP_URL).returncode == 0
    machine.ran()
    result = machine.install("--uninstall")
    assert result.returncode == 0, result.stderr
    ran = machine.ran()
    assert ["systemctl", "disable", "--now", "scan2pay-terminal.service"] in ran
    assert ["systemctl", "daemon-reload"] in ran
    root = machine.root
    for gone in (
        "opt/scan2pay",
        "etc/systemd/system/scan2pay-terminal.service",
        "etc/systemd/system/systemd-time-wait-sync.service.d",
    ):
        assert not (root / gone).exists(), gone
    assert (root / "etc/scan2pay/terminal.toml").exists()
    assert "userdel" not in {command[0] for command in ran}

    purged = machine.install("--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert ["userdel", "scan2pay"] in machine.ran()
    assert not (root / "etc/scan2pay").exists()
    assert not (root / "var/lib/scan2pay").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--psp-url", "ftp://pay.example.com"], "--psp-url must be an http(s):// URL"),
        (["--psp-url"], "--psp-url needs a URL"),
        (["--upgrade", "--uninstall"], "give one of --upgrade and --uninstall"),
        (["--display", 'ssd1306"'], "--display must not contain quotes"),
        (["--name", "a\\b"], "--name must not contain quotes, backslashes"),
        (["--purge"], "--purge goes with --uninstall"),
        (["--source", "/nonexistent"], "is not the scan2pay source"),
        (["--bogus"], "unknown option --bogus"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    machine: Machine, args: list[str], message: str
) -> None:
    result = machine.install(*args)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert machine.ran() == []
    assert machine.files() == []


def test_a_relative_root_is_refused(machine: Machine) -> None:
    result = subprocess.run(
        [BASH, str(SCRIPT), "--root", "relative/root", "--dry-run"],
        capture_output=True,
        text=True,
        env=machine.env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--root must be an absolute path" in result.stderr
    assert machine.ran() == []


def test_the_script_is_sound_shell() -> None:
    assert subprocess.run([BASH, "-n", str(SCRIPT)], timeout=30).returncode == 0
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail(SHELLCHECK_HINT, pytrace=False)
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_every_display_spec_in_the_wiring_tables_is_valid() -> None:
    wiring = (REPO / "docs" / "pi.md").read_text().split("## Wiring", 1)[1]
    specs = [
        spec
        for spec in re.findall(r"`([a-z0-9]+:[^`\s]+)`", wiring)
        if spec.split(":", 1)[0] in ("ssd1306", "sh1106", "st7789", "ili9341", "nextion", "escpos")
        and "…" not in spec
    ]
    kinds = {spec.split(":", 1)[0] for spec in specs}
    assert kinds == {"ssd1306", "sh1106", "st7789", "ili9341", "nextion", "escpos"}
    for spec in specs:
        parse_spec(spec)  # raises with what is wrong
