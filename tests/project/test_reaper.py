"""A test process killed mid-test, with no teardown, leaves nothing behind:
its guard (tests/support/reaper.py) kills every process it had started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.polling import wait_until
from tests.support.reaper import TOKEN_ENV

ROOT = Path(__file__).resolve().parents[2]

# What a test does, in a process of its own that the test then SIGKILLs: a
# PSP with two workers on PostgreSQL, a broker, a PostgreSQL cluster of its
# own with a client connected (so that it has a backend), and Chromium.
CRASHING_TEST = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.support.reaper import guard_this_process
guard_this_process()

import psycopg
from playwright.sync_api import sync_playwright
from tests.support.broker import Mosquitto
from tests.support.browser import LAUNCH_ARGS, chromium_path
from tests.support.postgres import PgCluster
from tests.support.process import PspProcess
from tests.support.workers import workers_of

psp = PspProcess({dsn!r}, workers=2, log_path=Path({log!r}))
broker = Mosquitto(Path({workdir!r}))
broker.start()
cluster = PgCluster()
cluster.start()
client = psycopg.connect(cluster.dsn("postgres"))
browser = sync_playwright().start().chromium.launch(
    executable_path=chromium_path(), args=LAUNCH_ARGS
)
browser.new_page().goto("about:blank")
while len(workers_of(psp.process.pid)) < 2:
    time.sleep(0.05)
time.sleep(1.5)  # the guard notes what is running at least once a second
print(json.dumps({{"psp": psp.process.pid, "broker": broker.process.pid,
                  "postgres": cluster.process.pid}}), flush=True)
time.sleep(600)
"""


def tree(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(90)
def test_a_sigkilled_test_process_leaves_no_process_behind(pg_dsn: str, tmp_path: Path) -> None:
    script = tmp_path / "crashing_test.py"
    script.write_text(
        textwrap.dedent(
            CRASHING_TEST.format(
                root=str(ROOT),
                dsn=pg_dsn,
                log=str(tmp_path / "psp.log"),
                workdir=str(tmp_path / "broker"),
            )
        )
    )
    test = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr").open("wb"),
        # Not this run's own guard's business: without its own guard, what
        # it starts would live until the whole run ends.
        env={k: v for k, v in os.environ.items() if k != TOKEN_ENV},
    )
    assert test.stdout is not None
    line = test.stdout.readline()
    assert line, (tmp_path / "stderr").read_text()[-3000:]
    started = json.loads(line)
    everything = tree(test.pid) - {test.pid}
    # The PSP's supervisor and two workers, the broker, the postmaster and
    # its backends, the browser driver and Chromium's processes.
    assert tree(started["psp"]) <= everything
    assert len(tree(started["psp"])) == 3
    assert len(tree(started["postgres"])) > 3
    assert any("chrom" in command_of(pid) for pid in everything)

    os.kill(test.pid, signal.SIGKILL)
    test.wait()

    wait_until(
        lambda: not any(alive(pid) for pid in everything),
        f"every process the killed test started is gone: left "
        f"{[command_of(pid)[:60] for pid in everything if alive(pid)]}",
        timeout=5.0,
    )


# A suite of one test that starts a PSP the way the tests do, then dies as
# an xdist worker does when it crashes: no teardown, no atexit.
CRASHING_SUITE = """
import os, signal, time
from pathlib import Path
from tests.support.process import PspProcess
from tests.support.workers import workers_of


def test_that_crashes(tmp_path: Path) -> None:
    psp = PspProcess(tmp_path / "psp.db")
    Path({pids!r}).write_text(str(psp.process.pid))
    time.sleep(1.5)  # the guard notes what is running at least once a second
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.timeout(90)
def test_a_crashed_xdist_worker_leaves_no_process_behind(tmp_path: Path) -> None:
    suite = tmp_path / "test_crashing_suite.py"
    pids = tmp_path / "pids"
    suite.write_text(CRASHING_SUITE.format(pids=str(pids)))
    done = subprocess.run(
        # Our conftest, as a plugin: the suite lies outside tests/.
        [sys.executable, "-m", "pytest", "-n", "1", *("-p", "tests.conftest"), str(suite)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
        env={k: v for k, v in os.environ.items() if k != TOKEN_ENV},
        check=False,
    )
    assert "crashed" in done.stdout, done.stdout[-3000:]
    psp = int(pids.read_text())
    wait_until(lambda: not alive(psp), "the crashed worker's PSP is gone", timeout=5.0)
