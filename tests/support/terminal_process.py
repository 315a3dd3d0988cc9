"""``scan2pay-terminal`` as a separate process, on the PNG display unless a
test names another, and what a test reads of it: its state messages as a
cashier receives them, its frames as a phone reads them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from scan2pay_common.messages import ShowQr, TerminalState, display_command_to_json
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import display_topic, state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber, publish
from tests.support.process import end_process
from tests.support.qr_decode import qr_codes

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
# The daemon's own main() with test seams (tests/support/terminal_runner.py).
RUNNER = (sys.executable, "-m", "tests.support.terminal_runner")
MERCHANT, TERMINAL = "mer_proc", "lane-7"
URL = "HTTP://127.0.0.1:8080/Q/" + "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"


class TerminalProcess:
    """``program``: what runs the daemon, ``scan2pay-terminal`` unless a test
    needs the runner's seams; ``env``: variables added to this process's."""

    def __init__(
        self,
        broker: Mosquitto,
        frames: Path,
        *extra: str,
        merchant: str = MERCHANT,
        program: tuple[str, ...] = (str(BIN / "scan2pay-terminal"),),
        env: dict[str, str] | None = None,
        display: str | None = None,
    ) -> None:
        self.frames = frames
        self.log = frames.parent / "terminal.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *program,
                    "--mqtt",
                    broker.url,
                    "--merchant",
                    merchant,
                    "--terminal",
                    TERMINAL,
                    "--name",
                    "Test Shop",
                    "--display",
                    display or f"png:{frames}",
                    "--idle-after",
                    "30",
                    *extra,
                ],
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return end_process(self.process, sig)

    def latest(self) -> Image.Image:
        return Image.open(self.frames / "latest.png")


def decode(image: Image.Image) -> list[str]:
    canvas = Image.new("L", (image.width + 40, image.height + 40), 0)
    canvas.paste(image.convert("L"), (20, 20))
    canvas = canvas.resize((canvas.width * 4, canvas.height * 4), Image.Resampling.NEAREST)
    return [result.text for result in qr_codes(canvas)]


class States:
    def __init__(self, broker: Mosquitto, merchant: str = MERCHANT) -> None:
        self.subscriber = Subscriber(broker.port, state_topic(merchant, TERMINAL))

    def until(self, screen: str, timeout: float = 15.0) -> TerminalState:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                (message,) = self.subscriber.wait_for(1, deadline - time.monotonic())
            except TimeoutError:
                break
            state = TerminalState.from_json(message.payload)
            seen.append(state)
            if state.screen == screen:
                return state
        raise AssertionError(f"no {screen!r} state; saw {seen}")


def send(broker: Mosquitto, payload: bytes | str, merchant: str = MERCHANT) -> None:
    publish(broker.port, display_topic(merchant, TERMINAL), payload)


def show_qr(checkout_id: str) -> bytes:
    return display_command_to_json(
        ShowQr(
            checkout_id=checkout_id,
            qr_url=URL,
            amount=1234,
            currency="EUR",
            expires_at=to_rfc3339(now_ms() + 300_000),
        )
    )
