"""``scan2pay-terminal print-sticker`` as a separate process, printing on a
receipt printer that is a pseudo-terminal: what arrives is read as a
printer reads it, and its QR code decoded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from PIL import Image

from tests.support.escpos_paper import Paper, PrintedQr
from tests.support.qr_decode import decode_both
from tests.support.serial_pty import Pty

BIN = Path(sys.executable).parent
URL = "HTTP://127.0.0.1:8080/S/KZ3Q7DXW2M5RB8YT4NHF6JCVPA"
EMV = "00020101021126580014BR.GOV.BCB.PIX0136https://pay.example/S/KZ3Q7DXW2M5RB8YT6304B7F1"


@pytest.fixture
def pty() -> Iterator[Pty]:
    pair = Pty()
    yield pair
    pair.unplug()


def print_sticker(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "scan2pay-terminal"), "print-sticker", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        # No SCAN2PAY_* settings from the test's environment.
        env={key: value for key, value in os.environ.items() if not key.startswith("SCAN2PAY_")},
    )


def decoded(qr: PrintedQr) -> str:
    rows = list(segno.make_qr(qr.data, error=qr.ecc).matrix_iter(scale=qr.module, border=4))
    dots = bytes(0 if dark else 255 for row in rows for dark in row)
    return decode_both(Image.frombytes("L", (len(rows), len(rows)), dots))


def test_the_configured_printer_prints_the_sticker_with_the_terminals_name_and_id(
    pty: Pty, tmp_path: Path
) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text(
        f'display = "escpos:{pty.path},ecc=Q"\nname = "Café Lindner"\nterminal = "lane-1"\n'
    )
    done = print_sticker("--config", str(config), "--url", URL, "--short-id", "K7Q2-9M")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"printed a sticker for lane-1 (K7Q2-9M) on escpos:{pty.path}\n"
    paper = Paper()
    paper.feed(pty.received())
    (qr,) = paper.qr_codes
    assert qr.ecc == "Q"
    assert decoded(qr) == URL
    words = [line.text.decode("cp437") for line in paper.lines]
    assert words == ["Café Lindner", "Scan to pay", "", "lane-1", "K7Q2-9M"]
    assert paper.printed[-1] == "partial cut"


def test_a_payload_on_the_printer_named_with_the_flags(pty: Pty) -> None:
    done = print_sticker(
        *("--payload", EMV, "--printer", f"escpos:{pty.path},charset=cp858,cut=full"),
        *("--merchant-name", "Bäckerei Müller", "--label", "Till 2", "--short-id", "Q9M2"),
    )
    assert done.returncode == 0, done.stderr
    paper = Paper()
    paper.feed(pty.received())
    (qr,) = paper.qr_codes
    assert qr.data == EMV.encode()
    assert decoded(qr) == EMV
    words = [line.text.decode("cp858") for line in paper.lines]
    assert words == ["Bäckerei Müller", "Scan to pay", "", "Till 2", "Q9M2"]
    assert paper.printed[-1] == "full cut"


@pytest.mark.parametrize(
    ("printer", "message"),
    [
        (
            "escpos:/dev/ttyNONESUCH",
            "cannot open the printer: escpos:/dev/ttyNONESUCH: cannot open",
        ),
        ("escpos:/", "cannot open the printer: escpos:/: cannot open /: "),  # a folder
    ],
)
def test_a_printer_that_is_missing_or_unwritable_is_reported(printer: str, message: str) -> None:
    done = print_sticker(
        *("--url", URL, "--printer", printer, "--merchant-name", "Café"),
        *("--label", "Till 1", "--short-id", "K7Q2"),
    )
    assert done.returncode == 3
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_display_is_no_printer() -> None:
    done = print_sticker(
        *("--url", URL, "--display", "console", "--merchant-name", "Café"),
        *("--label", "Till 1", "--short-id", "K7Q2"),
    )
    assert done.returncode == 2
    assert "console is a display, not a printer" in done.stderr
    assert "escpos:PORT" in done.stderr


def test_every_missing_part_is_reported_at_once() -> None:
    done = print_sticker("--url", "pay.example/S/X", "--short-id", "K7Q2", "--printer", "noop")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "scan2pay-terminal: bad configuration:",
        "  - --url: 'pay.example/S/X' is not an absolute http(s) URL",
        "  - --merchant-name: missing (or set name in the settings)",
        "  - --label: missing (or set terminal in the settings)",
    ]


def test_the_dummy_printer_takes_the_sticker() -> None:
    done = print_sticker(
        *("--url", URL, "--printer", "dummy", "--merchant-name", "Café"),
        *("--label", "Till 1", "--short-id", "K7Q2"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "printed a sticker for Till 1 (K7Q2) on dummy\n"


def test_data_longer_than_the_printers_qr_command_holds_is_refused(pty: Pty) -> None:
    done = print_sticker(
        *("--payload", "0" * 7090, "--printer", f"escpos:{pty.path}", "--merchant-name", "Café"),
        *("--label", "Till 1", "--short-id", "K7Q2"),
    )
    assert done.returncode == 2
    assert "a QR code holds at most 7089 bytes; the data has 7090" in done.stderr
    assert pty.received() == b""  # nothing half-printed
