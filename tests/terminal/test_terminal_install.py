"""``pip install '.[terminal]'`` alone makes a working terminal.

A fresh virtualenv gets the project with only its terminal extra, from a
copy of this checkout (pip builds in the source folder; the copy keeps the
checkout clean and lets two runs go side by side), through pip's cache and
the machine's usual indexes. Nothing of the PSP's stack may come with it.
Then that venv's own ``scan2pay-terminal``, with the PSP's public key as in
production, runs against a real mosquitto on the PNG display: it draws its
idle frame, publishes its state, and shows the QR of a signed ``show_qr``.

It prints what a Pi owner pays for the terminal: the venv's size on disk,
its packages and the daemon's resident memory (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from scan2pay_common.messages import DisplayTicket, ShowQr, TerminalState, display_command_to_json
from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import display_topic, state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber, publish
from tests.support.secure_shops import decode_qr

ROOT = Path(__file__).resolve().parents[2]
MERCHANT, TERMINAL = "mer_slim", "lane-1"
URL = "HTTP://127.0.0.1:8080/Q/MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"

# What the issue names, and the PSP's HTTP stack. cryptography is in no
# role: PyNaCl is the one Ed25519 library.
NOT_ON_A_TERMINAL = frozenset(
    {
        "psycopg",
        "psycopg-binary",
        "uvloop",
        "greenlet",
        "yoyo-migrations",
        "amqtt",
        "zxing-cpp",
        "playwright",
        "aiohttp",
        "cryptography",
    }
)
# What the copy leaves out: version control, caches and build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "*.egg-info",
    "build",
    "dist",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "test-results",
)


def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _size_on_disk(folder: Path) -> int:
    """Bytes of the blocks its files take, each file once (as ``du``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in folder.rglob("*"):
        stat = path.lstat()
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_blocks * 512
    return total


def _vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture(scope="module")
def terminal_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with ``.[terminal]`` and nothing else, made once for the module."""
    work = tmp_path_factory.mktemp("slim")
    source, venv = work / "scan2pay", work / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [
            *(str(venv / "bin" / "python"), "-m", "pip", "install"),
            *("--quiet", "--disable-pip-version-check", "--no-input"),
            f"{source}[terminal]",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
        cwd=work,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The extra must be the project's: pip only warns about one it lacks.
    assert "does not provide the extra" not in installed.stderr, installed.stderr
    return venv


def _packages(venv: Path) -> dict[str, str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {_normal(p["name"]): p["version"] for p in json.loads(listed.stdout)}


def _signed_show_qr(key: SigningKey) -> bytes:
    expires_at = to_rfc3339(now_ms() + 300_000)
    ticket = DisplayTicket(
        checkout_id="co_slim",
        merchant_id=MERCHANT,
        qr_url=URL,
        amount=1250,
        currency="EUR",
        terminal_id=TERMINAL,
        expires_at=expires_at,
    )
    command = ShowQr(
        "co_slim", URL, 1250, "EUR", expires_at, display_ticket=key.sign(ticket.to_dict())
    )
    return display_command_to_json(command)


class States:
    def __init__(self, broker: Mosquitto) -> None:
        self.subscriber = Subscriber(broker.port, state_topic(MERCHANT, TERMINAL))
        self.seen: list[TerminalState] = []

    def until(self, screen: str, log: Path, timeout: float = 30.0) -> TerminalState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                (message,) = self.subscriber.wait_for(1, deadline - time.monotonic())
            except TimeoutError:
                break
            state = TerminalState.from_json(message.payload)
            self.seen.append(state)
            if state.screen == screen:
                return state
        raise AssertionError(f"no {screen!r} state; saw {self.seen}; log: {log.read_text()}")


@pytest.fixture
def states(broker: Mosquitto) -> Iterator[States]:
    watcher = States(broker)
    yield watcher
    watcher.subscriber.close()


@pytest.mark.timeout(1200)  # a fresh venv: pip fetches or reuses ~15 wheels
def test_the_terminal_extra_installs_nothing_of_the_psp_and_runs(
    terminal_venv: Path, broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    packages = _packages(terminal_venv)
    assert "scan2pay" in packages
    assert NOT_ON_A_TERMINAL.isdisjoint(packages), sorted(NOT_ON_A_TERMINAL & set(packages))
    consistent = subprocess.run(
        [str(terminal_venv / "bin" / "python"), "-m", "pip", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert consistent.returncode == 0, consistent.stdout

    key = SigningKey.generate()
    frames, log = tmp_path / "frames", tmp_path / "terminal.log"
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with log.open("ab") as log_file:
        daemon = subprocess.Popen(
            [
                str(terminal_venv / "bin" / "scan2pay-terminal"),
                *("--mqtt", broker.url, "--merchant", MERCHANT, "--terminal", TERMINAL),
                *("--name", "Slim Shop", "--display", f"png:{frames}"),
                *("--psp-public-key", key.public.text),
            ],
            stdout=log_file,
            stderr=log_file,
            env=environment,
            cwd=tmp_path,
        )
    try:
        idle = states.until("idle", log)
        assert idle.online
        idle_frame = Image.open(frames / "latest.png")
        assert idle_frame.size == (128, 64)
        assert idle_frame.convert("L").getextrema() == (0, 255), "the idle frame is blank"
        assert decode_qr(frames / "latest.png") == []
        idle_rss = _vm_rss_kb(daemon.pid)

        publish(broker.port, display_topic(MERCHANT, TERMINAL), _signed_show_qr(key))
        assert states.until("qr", log).checkout_id == "co_slim"
        assert decode_qr(frames / "latest.png") == [URL]
        qr_rss = _vm_rss_kb(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
    assert code == 0, log.read_text()

    print(
        f"\nterminal venv: {_size_on_disk(terminal_venv) / 2**20:.1f} MiB on disk,"
        f" {len(packages)} packages: "
        + ", ".join(f"{name} {version}" for name, version in sorted(packages.items()))
        + f"\ndaemon VmRSS: {idle_rss / 1024:.1f} MiB idle,"
        f" {qr_rss / 1024:.1f} MiB with a signed QR on screen"
    )
