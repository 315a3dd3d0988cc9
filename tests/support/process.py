"""``psp-server`` as a separate OS process, the way an operator runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.file_clock import FileClock

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
# psp-server's own main() with a clock the test moves.
CLOCKED_RUNNER = (sys.executable, "-m", "tests.support.psp_runner")

# For load tests and benchmarks, which load the PSP on purpose from one
# address with few tokens: the abuse limits (tests/psp_server/api/guards/test_abuse.py) would
# turn that load away.
NO_RATE_LIMITS = (
    *("--rate-pay-per-ip", "off", "--rate-pay-per-token", "off"),
    *("--rate-qr-per-ip", "off", "--rate-qr-per-token", "off"),
)


def end_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> int:
    """Sends ``sig`` to a process still running, waits ``timeout`` seconds
    for it to end, kills it if it did not, and returns its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def psp_command(*args: str) -> list[str]:
    return [str(BIN / "psp-server"), *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, clock: FileClock | None = None
) -> subprocess.CompletedProcess[str]:
    """``psp-server ARGS``; with ``clock``, its main() runs on that file's
    clock (as ``PspProcess``'s does)."""
    command = psp_command(*args)
    if clock is not None:
        command[:1] = [*CLOCKED_RUNNER, "--clock-file", str(clock.path), "--"]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        cwd=None if clock is None else REPO,
    )


class PspProcess:
    """``psp-server serve`` on a free port. Its stderr goes to ``log_path``:
    by default the SQLite file's name with ``.log``; a PostgreSQL ``db``
    (a DSN) needs one given. With ``clock``, the server's clock is that
    file's, which the test moves (run through tests/support/psp_runner.py,
    as ``psp-server`` offers no such thing). ``program`` runs instead of
    ``psp-server`` (the same command under a wrapper)."""

    def __init__(
        self,
        db: Path | str,
        *,
        mqtt: str = "none",
        extra: tuple[str, ...] = (),
        workers: int = 1,
        log_path: Path | None = None,
        clock: FileClock | None = None,
        program: tuple[str, ...] | None = None,
    ) -> None:
        self.db = db
        self.log_path = log_path or Path(db).with_suffix(".log")
        self._log = self.log_path.open("ab")  # a restarted server adds to the same log
        command = psp_command("serve", "--port", "0", "--db", str(db), "--mqtt", mqtt, *extra)
        if program is not None:
            command[:1] = program
        if clock is not None:
            command[:1] = [*CLOCKED_RUNNER, "--clock-file", str(clock.path), "--"]
        if workers != 1:
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=None if clock is None else REPO,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        found = re.search(r"listening on (\S+) public_url=(\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"psp-server did not start: {line!r} {self.log()}")
        self.url, self.public_url = found.group(1), found.group(2)
        # GET /metrics: on its own port when the server was given one.
        metrics = re.search(r"metrics_url=(\S+)", line)
        self.metrics_url = metrics.group(1) if metrics else f"{self.url}/metrics"

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        code = end_process(self.process, sig, timeout=15)
        self._log.close()
        return code

    def wait_exit(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.process.returncode


def create_merchant(db: Path | str, name: str = "Shop") -> dict[str, str]:
    """``psp-server merchant create --json``: merchant_id, name, api_key."""
    result = run_cli("merchant", "create", "--name", name, "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    merchant: dict[str, str] = json.loads(result.stdout)
    return merchant


def create_wallet(db: Path | str, currency: str = "EUR", balance: str = "50.00") -> dict[str, Any]:
    """``psp-server wallet create --json``: wallet_id, currency, balance, token."""
    result = run_cli(
        "wallet",
        "create",
        "--name",
        "Ann",
        "--currency",
        currency,
        "--balance",
        balance,
        "--json",
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    wallet: dict[str, Any] = json.loads(result.stdout)
    return wallet
