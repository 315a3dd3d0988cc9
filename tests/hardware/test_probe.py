"""``hardware.probe``: whether a display is there, without drawing on it
(what ``scan2pay-terminal doctor`` reports). The I2C and PNG cases run in
tests/terminal/test_doctor.py, through the doctor itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.probe import ProbeFailure, probe
from hardware.registry import parse_spec

# luma 3.16 calls Image.getdata, which Pillow 13 deprecates (removed in Pillow
# 14, due 2027-10): luma's to fix, as tests/hardware/test_hw_luma.py notes.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


@pytest.mark.parametrize(
    ("spec", "found"),
    [
        ("escpos:loop://,baud=19200", "loop:// opens at 19200 baud"),
        ("console", "draws on this process's standard output"),
        ("noop", "noop needs no device"),
        ("dummy", "dummy needs no device"),
    ],
)
def test_what_is_there(spec: str, found: str) -> None:
    assert probe(parse_spec(spec)) == found


def test_png_makes_its_folder(tmp_path: Path) -> None:
    assert probe(parse_spec(f"png:{tmp_path}/a/b")) == f"frames can be written to {tmp_path}/a/b"
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # its trial file is gone


@pytest.mark.parametrize(
    ("spec", "what", "hint"),
    [
        ("nextion:/dev/ttyNONESUCH", "cannot open /dev/ttyNONESUCH", "dialout group"),
        ("st7789:spi:7:3", "there is no /dev/spidev7.3", "enable SPI with raspi-config"),
        ("ssd1306:i2c:250:0x3D", "there is no /dev/i2c-250", "enable I2C with raspi-config"),
    ],
)
def test_what_is_not_there(spec: str, what: str, hint: str) -> None:
    with pytest.raises(ProbeFailure) as caught:
        probe(parse_spec(spec))
    assert what in caught.value.what
    assert hint in caught.value.hint
