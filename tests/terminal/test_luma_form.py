"""luma.examples' display flags and keys beside the compact ``display``
value: both forms end in the same value, mixing them is an error, every
problem is reported at once, and a real daemon runs on them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from luma.core import cmdline
from PIL import Image

from hardware import luma_form, luma_panel
from hardware.luma_panel import LumaConfig
from hardware.registry import parse_spec
from terminal.cli import build_parser
from terminal.config import FIELDS, ConfigError, TerminalConfig, load
from tests.support.broker import Mosquitto
from tests.support.qr_decode import qr_codes
from tests.support.terminal_process import URL, States, TerminalProcess, decode, send, show_qr

# luma 3.16 calls Image.getdata, which Pillow 13 deprecates (removed in Pillow
# 14, due 2027-10): luma's to fix, as tests/hardware/test_hw_luma.py notes.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")

IDS = {"merchant": "mer_luma", "terminal": "lane-1"}


def luma_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = cmdline.create_parser(
        "luma.examples", parser=argparse.ArgumentParser(add_help=False), autocomplete=False
    )
    return parser


def from_flags(*argv: str) -> TerminalConfig:
    args = build_parser().parse_args(["--merchant", "mer_luma", "--terminal", "lane-1", *argv])
    return load({key: getattr(args, key) for key in FIELDS}, env={}, check_display=parse_spec)


def from_toml(tmp_path: Path, keys: dict[str, Any]) -> TerminalConfig:
    path = tmp_path / "terminal.toml"
    lines = [f"{key} = {_toml(value)}" for key, value in {**IDS, **keys}.items()]
    path.write_text("\n".join(lines) + "\n")
    return load({}, config_file=str(path), env={}, check_display=parse_spec)


def from_env(keys: dict[str, Any]) -> TerminalConfig:
    env = {FIELDS[key][1]: str(value) for key, value in {**IDS, **keys}.items()}
    return load({}, env=env, check_display=parse_spec)


def _toml(value: Any) -> str:
    return str(value) if isinstance(value, int) else f'"{value}"'


def qr_centre_x(image: Image.Image) -> float:
    """Where the QR code's centre is across ``image``, in its pixels."""
    margin, scale = 20, 4
    canvas = Image.new("L", (image.width + 2 * margin, image.height + 2 * margin), 0)
    canvas.paste(image.convert("L"), (margin, margin))
    canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.NEAREST)
    (result,) = qr_codes(canvas)
    corners = result.position
    xs = [corners.top_left.x, corners.top_right.x, corners.bottom_left.x, corners.bottom_right.x]
    return sum(xs) / len(xs) / scale - margin


def problems_of(*argv: str) -> str:
    with pytest.raises(ConfigError) as caught:
        from_flags(*argv)
    return "\n".join(caught.value.problems)


# The names and defaults are luma's own.


def test_the_keys_are_luma_examples_own_flags() -> None:
    actions = {action.dest: action for action in luma_parser()._actions}
    for key in luma_form.KEYS:
        assert key in actions, key
        assert luma_form.flag(key) in actions[key].option_strings, key
        assert FIELDS[key][0] == luma_form.flag(key)
    assert set(luma_form.INTERFACES) <= set(luma_form.luma_interfaces())


def test_a_key_left_out_means_what_it_means_in_luma_examples() -> None:
    """The compact form's defaults are luma's, so a value composed from
    luma's keys names only what differs."""
    luma = luma_parser()
    panel = LumaConfig("ili9341")
    assert luma.get_default("interface") == "i2c"
    assert luma.get_default("i2c_port") == luma_panel.I2C_DEFAULT_PORT
    assert int(luma.get_default("i2c_address"), 0) == luma_panel.I2C_DEFAULT_ADDRESS
    assert luma.get_default("spi_port") == luma_panel.SPI_DEFAULT_PORT
    assert luma.get_default("spi_device") == luma_panel.SPI_DEFAULT_DEVICE
    assert luma.get_default("spi_bus_speed") == luma_panel.SPI_DEFAULT_SPEED_HZ
    assert luma.get_default("gpio_data_command") == panel.dc_gpio
    assert luma.get_default("gpio_reset") == panel.rst_gpio
    assert luma.get_default("gpio_backlight") == panel.light_gpio
    assert luma.get_default("rotate") == 0


# Both forms end in the same value.

SAME = [
    pytest.param(
        {
            "display": "ssd1306",
            "interface": "i2c",
            "i2c_port": 1,
            "i2c_address": "0x3C",
            "width": 128,
            "height": 64,
            "rotate": 0,
        },
        "ssd1306:i2c:1:0x3C,width=128,height=64",
        id="ssd1306-i2c",
    ),
    pytest.param(
        {
            "display": "st7789",
            "interface": "spi",
            "spi_port": 0,
            "spi_device": 0,
            "width": 240,
            "height": 240,
            "rotate": 1,
        },
        "st7789:spi:0:0,width=240,height=240,rotate=1",
        id="st7789-spi",
    ),
    pytest.param(
        {
            "display": "ili9341",
            "interface": "spi",
            "spi_port": 0,
            "spi_device": 1,
            "spi_bus_speed": 32000000,
            "gpio_data_command": 23,
            "gpio_reset": 27,
            "gpio_backlight": 12,
            "rotate": 2,
        },
        "ili9341:spi:0:1,dc=23,rst=27,speed=32000000,light=12,rotate=2",
        id="ili9341-spi-gpio",
    ),
    pytest.param(
        {"display": "st7735", "interface": "gpio_cs_spi", "gpio_chip_select": 7},
        "st7735:spi:0:0,cs=7",
        id="st7735-gpio_cs_spi",
    ),
    pytest.param(
        {"display": "st7735", "interface": "spi", "gpio_reset": "none", "gpio_backlight": "none"},
        "st7735:spi:0:0,rst=none,light=none",
        id="st7735-unwired-pins",
    ),
    pytest.param({"display": "sh1106"}, "sh1106:i2c:1:0x3C", id="a-driver-alone"),
    pytest.param(
        {"display": "png:/srv/frames", "width": 128, "height": 64, "rotate": 1, "mode": "RGB"},
        "png:/srv/frames,size=128x64,mode=RGB,rotate=1",
        id="png-emulator",
    ),
]


@pytest.mark.parametrize(("luma", "compact"), SAME)
def test_both_forms_end_in_the_same_display_value(
    tmp_path: Path, luma: dict[str, Any], compact: str
) -> None:
    flags = [part for key, value in luma.items() for part in (FIELDS[key][0], str(value))]
    forms = {
        "flags": from_flags(*flags),
        "toml": from_toml(tmp_path, luma),
        "env": from_env(luma),
    }
    plain = from_flags("--display", compact)
    assert plain.display == compact
    for form, config in forms.items():
        assert config.display == compact, form
        assert parse_spec(config.display) == parse_spec(compact), form


def test_a_toml_address_may_be_a_number(tmp_path: Path) -> None:
    config = from_toml(tmp_path, {"display": "ssd1306", "i2c_address": 0x3D, "i2c_port": 0})
    assert config.display == "ssd1306:i2c:0:0x3D"


def test_gpio_cs_spi_is_an_spi_panel_with_its_own_chip_select_pin() -> None:
    flags = ["--display", "st7735", "--interface", "gpio_cs_spi", "--gpio-chip-select", "7"]
    config = parse_spec(from_flags(*flags).display)
    assert isinstance(config, LumaConfig)
    assert (config.bus, config.cs_gpio, config.dc_gpio) == ("spi", 7, 24)


# Bad values and bad combinations, all at once.


def test_every_bad_key_is_reported_at_once() -> None:
    text = problems_of(
        *("--display", "ssd1306", "--interface", "i2c", "--spi-port", "0"),
        *("--gpio-backlight", "18", "--rotate", "7", "--i2c-address", "0x99", "--mode", "RGB"),
        *("--gpio-chip-select", "8", "--width", "wide"),
    )
    for expected in [
        "spi_port (--spi-port, SCAN2PAY_SPI_PORT): is for the spi interfaces; interface is i2c",
        "gpio_backlight (--gpio-backlight, SCAN2PAY_GPIO_BACKLIGHT): is for luma.lcd panels;"
        " ssd1306 is an OLED",
        "rotate (--rotate, SCAN2PAY_ROTATE): must be one of 0, 1, 2, 3",
        "i2c_address (--i2c-address, SCAN2PAY_I2C_ADDRESS): must be 3..119",
        "mode (--mode, SCAN2PAY_MODE): is for the emulators",
        "gpio_chip_select (--gpio-chip-select, SCAN2PAY_GPIO_CHIP_SELECT): is for interface"
        " gpio_cs_spi",
        "width (--width, SCAN2PAY_WIDTH): 'wide' is not a number",
    ]:
        assert expected in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--display", "ssd1306:i2c:1:0x3C", "--i2c-port", "1", "--rotate", "2"],
            [
                "display (--display, SCAN2PAY_DISPLAY): 'ssd1306:i2c:1:0x3C' is the compact form",
                "luma's keys (i2c_port, rotate) go with display = 'ssd1306' alone:"
                " give one form, not both",
            ],
        ),
        (
            ["--display", "png:/tmp/f,size=64x32", "--width", "128", "--height", "64"],
            ["'png:/tmp/f,size=64x32' has its options already; give width, height there"],
        ),
        (["--interface", "spi"], ["display (--display, SCAN2PAY_DISPLAY): missing: luma's keys"]),
        (
            ["--display", "nextion:/dev/ttyUSB0", "--rotate", "1"],
            ["rotate (--rotate, SCAN2PAY_ROTATE): is a luma key; nextion takes none"],
        ),
        (
            ["--display", "png:/tmp/f", "--width", "128", "--interface", "i2c"],
            [
                "width (--width, SCAN2PAY_WIDTH): png takes width and height together",
                "interface (--interface, SCAN2PAY_INTERFACE): is for luma panels; png has no bus",
            ],
        ),
        (
            ["--display", "console", "--rotate", "1", "--mode", "RGB"],
            [
                "rotate (--rotate, SCAN2PAY_ROTATE): is for luma panels and png",
                "mode (--mode, SCAN2PAY_MODE): console is black and white",
            ],
        ),
        (
            ["--display", "png:/tmp/f", "--width", "128", "--height", "64", "--mode", "CMYK"],
            ["mode (--mode, SCAN2PAY_MODE): must be one of 1, L, RGB"],
        ),
        (
            ["--display", "st7789", "--interface", "gpio_cs_spi"],
            [
                "gpio_chip_select (--gpio-chip-select, SCAN2PAY_GPIO_CHIP_SELECT): missing:"
                " gpio_cs_spi needs the GPIO the panel's CS is wired to (luma's default, 24,"
            ],
        ),
        (
            ["--display", "st7789", "--interface", "spi", "--gpio-data-command", "25"],
            ["st7789:spi:0:0,dc=25", "dc= and rst= are both GPIO 25"],
        ),
    ],
)
def test_bad_combinations_are_named(argv: list[str], expected: list[str]) -> None:
    text = problems_of(*argv)
    for fragment in expected:
        assert fragment in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--display", "ssd1306", "--interface", "bitbang"],
            "'bitbang' is one of luma's interfaces scan2pay does not drive; use i2c, spi,"
            " gpio_cs_spi",
        ),
        (
            ["--display", "ssd1306", "--interface", "usb"],
            "unknown interface 'usb'; known: i2c, spi, gpio_cs_spi",
        ),
        (["--display", "oled", "--interface", "i2c"], "unknown luma driver 'oled'; known: "),
        (["--display", "ssd1306", "--spi-bus-speed", "9000000"], "luma's SPI clocks are"),
    ],
)
def test_unknown_values_are_reported_with_the_known_ones(argv: list[str], expected: str) -> None:
    text = problems_of(*argv)
    assert expected in text
    if "oled" in argv:
        assert "ssd1306" in text.split("known: ", 1)[1]


def test_a_daemon_on_another_display_never_imports_luma(tmp_path: Path) -> None:
    """luma's import starts threads (docs/performance.md): the emulators'
    luma keys are read without it."""
    code = (
        "import sys\n"
        "from hardware.registry import parse_spec\n"
        "from terminal.config import load\n"
        f"config = load({{'merchant': 'mer_1', 'terminal': 't', 'display': 'png:{tmp_path}',"
        " 'width': '128', 'height': '64', 'rotate': '2'}, env={}, check_display=parse_spec)\n"
        "assert config.display.endswith(',size=128x64,rotate=2'), config.display\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'luma'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# A real daemon on luma's flags.


@pytest.mark.broker
def test_a_daemon_started_with_luma_flags_runs(broker: Mosquitto, tmp_path: Path) -> None:
    """The PNG display as a 128x64 colour panel mounted a quarter turn
    clockwise: each file is the panel's own size, the screen turned on it."""
    frames = tmp_path / "frames"
    states = States(broker)
    terminal = TerminalProcess(
        broker, frames, *("--width", "128", "--height", "64", "--rotate", "1", "--mode", "RGB")
    )
    try:
        states.until("idle")
        idle = terminal.latest()
        assert (idle.size, idle.mode) == ((128, 64), "RGB")
        send(broker, show_qr("co_luma"))
        states.until("qr")
        frame = terminal.latest()
        assert frame.size == (128, 64)
        assert decode(frame) == [URL]
        # The renderer drew a portrait screen, the QR on top; a quarter turn
        # clockwise puts its top on the file's right.
        assert qr_centre_x(frame) > 64 + 8
        upright = frame.transpose(Image.Transpose.ROTATE_90)
        assert upright.size == (64, 128)
        assert decode(upright) == [URL]
    finally:
        assert terminal.stop() == 0
        states.subscriber.close()
    log = terminal.log.read_text()
    assert f"on png:{frames},size=128x64,mode=RGB,rotate=1" in log
