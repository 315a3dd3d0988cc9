"""``scan2pay-terminal test-pattern`` as a separate process on the PNG
display: the pattern shows the panel's edges, its corners (so its rotation)
and its contrast, then a sample QR that decodes."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from terminal.test_pattern import DEFAULT_PSP_URL, SAMPLE_CODE
from tests.support.terminal_process import decode

BIN = Path(sys.executable).parent
SAMPLE = f"{DEFAULT_PSP_URL}/Q/{SAMPLE_CODE}"


def run_test_pattern(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "scan2pay-terminal"), "test-pattern", "--hold", "0", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def frames(directory: Path) -> list[Image.Image]:
    files = sorted(directory.glob("frame-*.png"))
    return [Image.open(path).convert("L") for path in files]


def lit(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    """The share of lit pixels in ``box`` (left, top, right, bottom; inclusive)."""
    left, top, right, bottom = box
    values = [
        image.getpixel((x, y)) for x in range(left, right + 1) for y in range(top, bottom + 1)
    ]
    return sum(1 for value in values if isinstance(value, int) and value >= 128) / len(values)


def test_a_mono_panel_gets_the_pattern_then_a_sample_qr(tmp_path: Path) -> None:
    done = run_test_pattern("--display", f"png:{tmp_path}")
    assert done.returncode == 0, done.stderr
    pattern, qr = frames(tmp_path)
    assert pattern.size == qr.size == (128, 64)
    width, height = pattern.size
    # The border: every outermost pixel lit.
    assert lit(pattern, (0, 0, width - 1, 0)) == lit(
        pattern, (0, height - 1, width - 1, height - 1)
    )
    assert lit(pattern, (0, 0, width - 1, 0)) == 1.0
    assert lit(pattern, (0, 0, 0, height - 1)) == lit(
        pattern, (width - 1, 0, width - 1, height - 1)
    )
    assert lit(pattern, (0, 0, 0, height - 1)) == 1.0
    # The solid square marks the top-left corner; the other corners have brackets.
    mark = height // 8
    assert lit(pattern, (2, 2, 1 + mark, 1 + mark)) == 1.0
    for x, y in (
        (width - 2 - mark, 2),
        (width - 2 - mark, height - 2 - mark),
        (2, height - 2 - mark),
    ):
        assert lit(pattern, (x, y, x + mark - 1, y + mark - 1)) < 0.5
    # The checkerboard of single pixels, along the bottom.
    row = [pattern.getpixel((x, height - 4)) for x in range(2 + mark + 1, width // 2)]
    assert all(a != b for a, b in itertools.pairwise(row)), row
    assert decode(pattern) == []
    assert decode(qr) == [SAMPLE]
    assert "frame 1 of 2 on png:" in done.stdout
    assert "frame 2 of 2 on png:" in done.stdout


def test_a_panel_mounted_turned_shows_the_square_in_another_corner(tmp_path: Path) -> None:
    """luma.examples' flags on the PNG display: a 128x64 panel turned a
    quarter clockwise; its top-left corner is the file's top right."""
    done = run_test_pattern(
        *("--display", f"png:{tmp_path}", "--width", "128", "--height", "64", "--rotate", "1")
    )
    assert done.returncode == 0, done.stderr
    pattern, qr = frames(tmp_path)
    assert pattern.size == (128, 64)
    mark = 64 // 8
    assert lit(pattern, (128 - 2 - mark, 2, 128 - 3, 1 + mark)) == 1.0
    assert lit(pattern, (2, 2, 1 + mark, 1 + mark)) < 0.5
    assert decode(qr) == [SAMPLE]


def test_a_colour_panel_gets_a_grey_ramp_and_colour_bars(tmp_path: Path) -> None:
    done = run_test_pattern(
        "--display", f"png:{tmp_path},size=240x240,mode=RGB", "--psp-url", "HTTPS://PAY.EXAMPLE.COM"
    )
    assert done.returncode == 0, done.stderr
    files = sorted(tmp_path.glob("frame-*.png"))
    pattern = Image.open(files[0])
    assert pattern.mode == "RGB"
    strip = pattern.crop((40, 200, 200, 237))
    colours: set[tuple[int, int, int]] = {
        (colour[0], colour[1], colour[2])
        for _, colour in strip.getcolors(maxcolors=4096) or []
        if isinstance(colour, tuple)
    }
    greys = {colour for colour in colours if colour[0] == colour[1] == colour[2]}
    assert len(greys) >= 16
    assert {(255, 0, 0), (0, 255, 0), (0, 0, 255)} <= colours
    assert decode(Image.open(files[1])) == [f"HTTPS://PAY.EXAMPLE.COM/Q/{SAMPLE_CODE}"]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--display", "ssd1306:i2c:99:0x3C"], 3, "enable I2C"),
        (["--display", "ssd1306", "--interface", "i2c", "--i2c-port", "99"], 3, "/dev/i2c-99"),
        (["--display", "ssd1306", "--interface", "carrier-pigeon"], 2, "unknown interface"),
    ],
)
def test_a_display_that_is_not_there_is_reported(argv: list[str], code: int, message: str) -> None:
    done = run_test_pattern(*argv)
    assert done.returncode == code
    assert message in done.stderr
