"""The terminal's pairing parts without a network: the code's alphabet and
strength, the pairing screen on every panel size, and the config file's
writing (mode 0600, atomic, read back exactly)."""

from __future__ import annotations

import math
import os
import stat
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from hardware.base import Geometry
from scan2pay_common import pairing_codes
from scan2pay_common.errors import InvalidValue
from terminal import config_file
from terminal.pairing_screen import PairingScreen, content, layout, render
from tests.support.panels import GEOMETRIES
from tests.support.qr_decode import qr_codes

NOW = 1_764_000_000_000
CODE = "K7QM-3XWD-9T"
URL = "HTTPS://PAY.EXAMPLE.COM/merchant/pair?code=K7QM3XWD9T"


# The code.


def test_a_code_has_at_least_40_bits_and_no_look_alikes() -> None:
    assert pairing_codes.BITS >= 40
    assert not set("01OILU") & set(pairing_codes.ALPHABET)
    assert len(set(pairing_codes.ALPHABET)) == len(pairing_codes.ALPHABET) == 30
    drawn = [pairing_codes.new_code() for _ in range(2000)]
    assert all(len(code) == 10 and set(code) <= set(pairing_codes.ALPHABET) for code in drawn)
    assert len(set(drawn)) == len(drawn)
    # Every symbol turns up, about as often as the others: drawn uniformly.
    counts = [sum(code.count(symbol) for code in drawn) for symbol in pairing_codes.ALPHABET]
    expected = 20_000 / 30
    assert all(abs(count - expected) < 6 * math.sqrt(expected) for count in counts)
    assert pairing_codes.grouped("K7QM3XWD9T") == CODE


def test_a_code_is_read_as_people_type_it() -> None:
    for good in (CODE, "k7qm3xwd9t", " k7qm 3xwd 9t ", "K7QM-3XWD9T"):
        assert pairing_codes.parse_code(good) == "K7QM3XWD9T"
    refusals: list[tuple[object, str]] = [
        ("K7QM-3XWD-9O", "codes never use 0, 1, O, I, L or U"),
        ("K7QM-3XWD", "has 10 letters and digits"),
        ("K7QM-3XWD-9T2", "this has 11"),
        ("K7QM-3XWD-9!", "a pairing code has no '!'"),
        ("", "enter the pairing code"),
        ("A" * 41, "far too long"),
        (None, "must be text"),
    ]
    for typed, said in refusals:
        with pytest.raises(InvalidValue) as refused:
            pairing_codes.parse_code(typed)
        assert said in refused.value.message, typed


# The screen.


def _read(image: Image.Image) -> list[str]:
    canvas = Image.new("L", (image.width + 40, image.height + 40), 0)
    canvas.paste(image.convert("L"), (20, 20))
    canvas = canvas.resize((canvas.width * 4, canvas.height * 4), Image.Resampling.NEAREST)
    return [result.text for result in qr_codes(canvas)]


def _words(screen: PairingScreen, geometry: Geometry) -> list[str]:
    return [placed.text for placed in layout(screen, geometry, NOW).words]


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_the_pairing_screen_shows_the_code_whole_and_a_qr_where_one_fits(name: str) -> None:
    geometry = GEOMETRIES[name]
    screen = PairingScreen(CODE, URL, NOW + 599_500)
    image = render(screen, geometry, NOW)
    assert (image.size, image.mode) == ((geometry.width, geometry.height), geometry.mode)
    words = _words(screen, geometry)
    shown = "".join(words)
    assert CODE in words or "".join(CODE.split("-")) in shown, words  # never cut short
    qr = layout(screen, geometry, NOW).qr
    if name == "128x32":
        assert qr is None  # the code alone: no room for both
    else:
        assert qr is not None, name
        assert _read(image) == [URL]
    assert render(screen, geometry, NOW).tobytes() == image.tobytes()


def test_the_pairing_screen_says_what_is_wrong_and_counts_down() -> None:
    geometry = GEOMETRIES["320x240"]
    screen = PairingScreen(CODE, URL, NOW + 599_500, message="No connection to the PSP")
    words = _words(screen, geometry)
    assert "10:00" in words
    assert _read(render(screen, geometry, NOW)) == [URL]  # the banner is not over the QR
    assert content(screen, NOW).lines == (
        "Pairing code",
        CODE,
        "10:00",
        "No connection to the PSP",
    )
    assert content(screen, NOW).qr_url == URL
    assert content(screen, NOW).kind == "pairing"
    waiting = PairingScreen(message="No connection to the PSP")
    assert content(waiting, NOW).lines == ("Pairing", "No connection to the PSP")
    assert content(waiting, NOW).qr_url is None
    assert _words(waiting, geometry) == ["Pairing"]


# The config file.


def test_the_config_file_is_written_0600_atomically_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "terminal.toml"
    path.write_text('display = "png:/x"\n# a comment\nmqtt = "mqtt://old"\nidle_after = 12.5\n')
    os.chmod(path, 0o644)
    old_umask = os.umask(0)  # even a careless umask gives no one else the password
    try:
        config_file.rewrite(
            path,
            {
                "mqtt": 'mqtts://m%2Ft:p"\\w@h:8883',
                "name": "Café \u202e\x7f\x01 \U0001f600",
                "psp_public_key": ["ed25519:a", "ed25519:b"],
                "flag": True,
            },
            drop=("mqtt", "merchant"),
            why="Paired",
        )
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_uid == os.getuid()
    assert tomllib.loads(path.read_text()) == {
        "display": "png:/x",
        "idle_after": 12.5,
        "mqtt": 'mqtts://m%2Ft:p"\\w@h:8883',
        "name": "Café \u202e\x7f\x01 \U0001f600",
        "psp_public_key": ["ed25519:a", "ed25519:b"],
        "flag": True,
    }
    assert path.read_text().startswith("# Paired by scan2pay-terminal on ")
    assert [p.name for p in tmp_path.iterdir()] == ["terminal.toml"]  # no temporary left


def test_a_value_that_cannot_be_written_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "terminal.toml"
    path.write_text("[table]\nkey = 1\n")
    before = path.read_bytes()
    with pytest.raises(InvalidValue, match="cannot be written back"):
        config_file.rewrite(path, {"mqtt": "mqtt://x"}, drop=(), why="Paired")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["terminal.toml"]
    with pytest.raises(InvalidValue, match="cannot write the key"):
        config_file.dumps({"a b": 1})
