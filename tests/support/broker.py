"""A real mosquitto process on an ephemeral loopback port, for tests."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.process import end_process

INSTALL_HINT = (
    "mosquitto is not installed; the tests start a real broker. "
    "Install it with `sudo apt-get install mosquitto` (make test does this when run as root)."
)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Mosquitto:
    """Starts, stops and restarts one broker on one port. Persistence is on,
    so that a persistent subscriber's session and queue survive a restart."""

    def __init__(self, workdir: Path, *, acl: str | None = None) -> None:
        self.binary = mosquitto_binary()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Started as root, mosquitto would drop to a user that cannot
            # write our persistence folder; stay who we are.
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            # Without it Nagle's algorithm meets delayed ACKs and each hop
            # waits ~40 ms; production brokers want it too (docs/mqtt.md).
            "set_tcp_nodelay true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 0\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\n"
        )
        if acl is not None:  # anonymous clients get what the ACL's first lines grant
            (workdir / "acl").write_text(acl)
            with self.config.open("a") as config:
                config.write(f"acl_file {workdir / 'acl'}\n")

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=log
            )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)  # SIGTERM: mosquitto saves its persistence file
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
