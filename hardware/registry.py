"""``--display`` values: parsed into a config (``parse_spec``), checked without
touching hardware, and opened (``open_display``).

A value is a head, then options after commas::

    DRIVER:i2c[:PORT[:ADDRESS]][,OPTION=VALUE...]  ssd1306:i2c:1:0x3C,rotate=2
    DRIVER:spi[:PORT[:DEVICE]][,OPTION=VALUE...]   st7789:spi:0:0,dc=24,rst=25,width=240,height=240
    png:DIR[,size=WxH][,mode=1|L|RGB][,rotate=0..3] png:/tmp/frames,size=320x240,mode=RGB
    console[,size=WxH]                              console,size=128x64
    nextion:PORT[,baud=N][,charset=NAME][,qr=NAME][,text=NAME+NAME...]
    escpos:PORT[,baud=N][,charset=CODEPAGE][,module=1..16][,ecc=L|M|Q|H][,cut=partial|full|none]
    noop[,size=WxH][,mode=1|L|RGB]
    dummy[,size=WxH][,mode=1|L|RGB]

Of these, ``escpos``, ``noop`` and ``dummy`` are printers too:
``open_printer`` opens one (``hardware.printer``) to print a sticker.

Luma panels (DRIVER is any luma.oled or luma.lcd device name): I2C defaults
to port 1, address 0x3C; SPI to port 0, device 0. Options: ``width``,
``height`` (for drivers that take them), ``rotate`` (0-3, quarter turns
clockwise), ``speed`` (bus clock in Hz; on SPI one of luma's clocks, default
8000000; on I2C, default 400000, it only informs the bus time estimate: set
the real clock with ``dtparam=i2c_arm_baudrate`` in config.txt), and on SPI
``dc`` and ``rst`` (GPIO numbers, default 24 and 25; ``rst=none`` if not
wired) and ``cs`` (a GPIO that drives the chip select instead of the SPI
controller's CE line: luma's ``gpio_cs_spi`` interface), and for luma.lcd
panels ``light`` (backlight GPIO, default 18; ``light=none`` if the
backlight is wired to power). The defaults are luma's own. One GPIO cannot
be two lines. Numbers may be decimal or 0x-hex. Sizes are checked against
luma's own table (by building the driver over luma's ``noop`` interface).

``png`` takes ``rotate`` as a panel does: ``size`` is the file's size, the
screen is drawn on it turned by quarter turns clockwise, as a panel mounted
that way shows it.

luma.examples' flags (``--display ssd1306 --interface i2c --i2c-port 1``)
are another way to write these values: ``luma_form`` turns them into one.

PORT for nextion and escpos is a device path or a pyserial URL
(``socket://printer:9100``); it runs to the first comma, so it may contain
colons. DIR is likewise everything up to the first comma. ``text`` names the
Nextion's text components, ``+``-separated (default ``t0+t1+t2+t3``), and
``qr`` its qrcode component (default ``qr0``). ``charset`` is a Python codec
name (nextion, default iso-8859-1) or one of the code pages in
``hardware.escpos.CODE_PAGES`` (escpos, default cp437).

``noop`` has no geometry unless given a size (then the renderer still runs,
which is useful for timing it); ``dummy`` defaults to 128x64 mode 1.

Every problem raises ``DisplaySpecError`` naming the bad part; all problems
of one value are reported together, followed by the accepted forms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from . import spec_values as values
from .base import ColourMode, Display, DummyDisplay, Geometry, NoopDisplay
from .errors import DisplaySpecError
from .printer import DummyPrinter, NoopPrinter, Printer

# Each kind's module (and what it brings: luma and its threads, pyserial,
# tempfile) is imported only when a value names that kind, so that a daemon
# holds in memory only the driver it runs (a Pi Zero has 512 MB in all).
if TYPE_CHECKING:
    from . import luma_panel
    from .escpos import EscPosConfig
    from .nextion import NextionConfig

FORMS = """accepted --display forms:
  DRIVER:i2c[:PORT[:ADDRESS]][,OPTION=VALUE...]  e.g. ssd1306:i2c:1:0x3C,rotate=2
  DRIVER:spi[:PORT[:DEVICE]][,OPTION=VALUE...]   e.g. st7789:spi:0:0,dc=24,width=240,height=240
    (DRIVER: a luma.oled or luma.lcd device;
     OPTION: width, height, rotate, speed, dc, rst, cs, light)
  png:DIR[,size=WxH][,mode=1|L|RGB][,rotate=0..3]
  console[,size=WxH]
  nextion:PORT[,baud=N][,charset=NAME][,qr=NAME][,text=NAME+NAME...]
  escpos:PORT[,baud=N][,charset=CODEPAGE][,module=1..16][,ecc=L|M|Q|H][,cut=partial|full|none]
  noop[,size=WxH][,mode=1|L|RGB]
  dummy[,size=WxH][,mode=1|L|RGB]"""

_MODES: tuple[ColourMode, ...] = ("1", "L", "RGB")
T = TypeVar("T")


class DisplayConfig(Protocol):
    """What ``parse_spec`` returns: a checked description that opens."""

    def open(self) -> Display: ...


@dataclass(frozen=True, slots=True)
class BuiltinConfig:
    kind: str  # "noop" or "dummy"
    geometry: Geometry | None

    def open(self) -> Display:
        if self.kind == "noop":
            return NoopDisplay(self.geometry)
        return DummyDisplay(self.geometry)

    def open_printer(self) -> Printer:
        return NoopPrinter() if self.kind == "noop" else DummyPrinter()


PRINTER_FORMS = """accepted printers:
  escpos:PORT[,baud=N][,charset=CODEPAGE][,module=1..16][,ecc=L|M|Q|H][,cut=partial|full|none]
  noop
  dummy"""


def open_display(spec: str) -> Display:
    """Opens the display ``spec`` names. ``DisplaySpecError`` for a bad value,
    ``DisplayError`` for a device that is not there or not answering."""
    return parse_spec(spec).open()


def open_printer(spec: str) -> Printer:
    """Opens the printer ``spec`` names (a ``--display`` value of a kind that
    prints). ``DisplaySpecError`` for a bad value or a display that does not
    print, ``DisplayError`` for a device that is not there."""
    config = parse_spec(spec)
    opener: Callable[[], Printer] | None = getattr(config, "open_printer", None)
    if opener is None:
        kind = spec.strip().partition(",")[0].partition(":")[0]
        raise DisplaySpecError(f"{spec!r}: {kind} is a display, not a printer\n{PRINTER_FORMS}")
    return opener()


def parse_spec(spec: str) -> DisplayConfig:
    """Parses and checks ``spec`` without opening any device or port."""
    problems: list[str] = []
    head, _, option_text = spec.strip().partition(",")
    kind, has_target, target = head.partition(":")
    options = _Options(option_text, problems)
    config: DisplayConfig | None = None
    if not head:
        problems.append("the value is empty")
    elif kind in ("noop", "dummy"):
        _no_target(kind, has_target, problems)
        default = None if kind == "noop" else Geometry(128, 64, "1")
        config = BuiltinConfig(kind, _geometry(options, default))
    elif kind == "console":
        from .console import ConsoleConfig

        _no_target(kind, has_target, problems)
        size = options.take("size", values.size, (128, 64))
        config = ConsoleConfig(Geometry(*size, "1"))
    elif kind == "png":
        from .png_file import PngConfig

        if not target:
            problems.append("png needs a directory: png:DIR")
        geometry = _geometry(options, Geometry(128, 64, "1"))
        rotate = options.take("rotate", values.rotation, 0)
        if geometry is not None:
            config = PngConfig(Path(target), geometry, rotate)
    elif kind == "nextion":
        config = _nextion(target, options, problems)
    elif kind == "escpos":
        config = _escpos(target, options, problems)
    else:
        config = _luma(kind, has_target, target, options, problems)
    options.report_unknown(kind)
    if problems or config is None:  # no config comes with its problem, told
        raise DisplaySpecError(_message(spec, problems))
    return config


def _luma(
    driver: str, has_target: str, target: str, options: _Options, problems: list[str]
) -> luma_panel.LumaConfig | None:
    from . import luma_panel

    try:
        driver_class = luma_panel.find_driver(driver)
    except DisplaySpecError as error:
        problems.append(f"{driver!r} is not png, console, nextion, escpos, noop, dummy: {error}")
        return None
    bus_text, _, address_text = target.partition(":")
    if not has_target or bus_text not in ("i2c", "spi"):
        problems.append(
            f"{driver} needs a bus: {driver}:i2c[:PORT[:ADDRESS]] or {driver}:spi[:PORT[:DEVICE]]"
        )
        return None
    bus: luma_panel.Bus = "i2c" if bus_text == "i2c" else "spi"
    defaults = luma_panel.LumaConfig(driver, bus)
    port_text, _, where_text = address_text.partition(":")
    if ":" in where_text:
        problems.append(f"{target!r} has too many parts for {bus}")
    if bus == "i2c":
        port = _number("I2C port", port_text, luma_panel.I2C_DEFAULT_PORT, 0, 255, problems)
        address = _number(
            "I2C address", where_text, luma_panel.I2C_DEFAULT_ADDRESS, 0x03, 0x77, problems
        )
        speed = options.take("speed", values.positive_int, None)
        for spi_only in ("dc", "rst", "cs"):
            options.refuse(spi_only, "is for SPI panels, not I2C")
        dc, rst, cs = defaults.dc_gpio, defaults.rst_gpio, None
    else:
        port = _number("SPI port", port_text, luma_panel.SPI_DEFAULT_PORT, 0, 255, problems)
        address = _number("SPI device", where_text, luma_panel.SPI_DEFAULT_DEVICE, 0, 255, problems)
        speed = options.take("speed", values.spi_speed, None)
        dc = options.take("dc", values.gpio, defaults.dc_gpio)
        rst = options.take("rst", values.gpio_or_none, defaults.rst_gpio)
        cs = options.take("cs", values.gpio, None)
    if luma_panel.is_lcd(driver_class):
        light = options.take("light", values.gpio_or_none, defaults.light_gpio)
    else:
        options.refuse("light", f"is for luma.lcd panels; {driver} is an OLED")
        light = defaults.light_gpio
    if bus == "spi":
        lcd_light = light if luma_panel.is_lcd(driver_class) else None  # an OLED has none
        _distinct_pins({"dc": dc, "rst": rst, "cs": cs, "light": lcd_light}, problems)
    config = luma_panel.LumaConfig(
        driver=driver,
        bus=bus,
        port=port,
        address=address,
        width=options.take("width", values.positive_int, None),
        height=options.take("height", values.positive_int, None),
        rotate=options.take("rotate", values.rotation, 0),
        speed_hz=speed,
        dc_gpio=dc,
        rst_gpio=rst,
        light_gpio=light,
        cs_gpio=cs,
    )
    if not problems:
        try:
            luma_panel.check_config(config)
        except DisplaySpecError as error:
            problems.append(str(error))
    return config


def _distinct_pins(pins: dict[str, int | None], problems: list[str]) -> None:
    """One GPIO cannot be two of a panel's lines (luma.examples' own default
    chip select, 24, is its default data/command pin)."""
    seen: dict[int, str] = {}
    for line, pin in pins.items():
        if pin is None:
            continue
        if pin in seen:
            problems.append(f"{seen[pin]}= and {line}= are both GPIO {pin}")
        else:
            seen[pin] = line


def _nextion(target: str, options: _Options, problems: list[str]) -> NextionConfig | None:
    from .nextion import NextionConfig

    if not target:
        problems.append("nextion needs a serial port: nextion:/dev/ttyUSB0")
    texts: tuple[str, ...] = options.take("text", _component_list, ("t0", "t1", "t2", "t3"))
    config = NextionConfig(
        port=target,
        baud=options.take("baud", values.positive_int, 9600),
        charset=options.take("charset", _encoding, "iso-8859-1"),
        qr=options.take("qr", _component, "qr0"),
        texts=texts,
    )
    return config if target else None


def _escpos(target: str, options: _Options, problems: list[str]) -> EscPosConfig | None:
    from .escpos import CODE_PAGES, CUTS, ERROR_CORRECTION, Cut, EscPosConfig

    if not target:
        problems.append("escpos needs a serial port: escpos:/dev/ttyUSB0")
    config = EscPosConfig(
        port=target,
        baud=options.take("baud", values.positive_int, 9600),
        charset=options.take("charset", values.choice(*CODE_PAGES), "cp437"),
        module=options.take("module", values.int_range(1, 16), 6),
        ecc=options.take("ecc", values.choice(*ERROR_CORRECTION), "M"),
        cut=cast(Cut, options.take("cut", values.choice(*CUTS), "partial")),
    )
    return config if target else None


def _geometry(options: _Options, default: Geometry | None) -> Geometry | None:
    size = options.take("size", values.size, None)
    mode = options.take("mode", values.choice(*_MODES), None)
    if size is None and default is None:
        if mode is not None:
            options.problems.append("mode= needs size= as well")
        return None
    width, height = size or (default.size if default else (128, 64))
    return Geometry(width, height, cast(ColourMode, mode or (default.mode if default else "1")))


def _no_target(kind: str, has_target: str, problems: list[str]) -> None:
    if has_target:
        problems.append(f"{kind} takes no ':' part; options go after a comma")


def _message(spec: str, problems: list[str]) -> str:
    listed = "\n".join(f"  {problem}" for problem in problems)
    return f"--display {spec!r}:\n{listed}\n{FORMS}"


class _Options:
    """``key=value`` pairs, read one by one; those never read are reported."""

    def __init__(self, text: str, problems: list[str]) -> None:
        self.problems = problems
        self.pairs: dict[str, str] = {}
        self.accepted: set[str] = set()
        self.read: set[str] = set()
        for item in text.split(",") if text else []:
            key, equals, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not equals or not key or not value:
                problems.append(f"option {item!r} is not KEY=VALUE")
            elif key in self.pairs:
                problems.append(f"option {key!r} is given twice")
            else:
                self.pairs[key] = value

    def take(self, key: str, parse: Callable[[str], T], default: T) -> T:
        self.accepted.add(key)
        self.read.add(key)
        if key not in self.pairs:
            return default
        try:
            return parse(self.pairs[key])
        except ValueError as error:
            self.problems.append(f"{key}={self.pairs[key]}: {error}")
            return default

    def refuse(self, key: str, reason: str) -> None:
        """``key`` is known but does not apply here."""
        self.read.add(key)
        if key in self.pairs:
            self.problems.append(f"{key}= {reason}")

    def report_unknown(self, kind: str) -> None:
        for key in sorted(self.pairs.keys() - self.read):
            accepted = ", ".join(sorted(self.accepted)) or "none"
            self.problems.append(f"unknown option {key!r} for {kind} (accepted: {accepted})")


def _number(what: str, text: str, default: int, low: int, high: int, problems: list[str]) -> int:
    if not text:
        return default
    try:
        return values.int_range(low, high)(text)
    except ValueError as error:
        problems.append(f"{what} {text!r}: {error}")
        return default


def _encoding(text: str) -> str:
    from .charset import check_encoding

    try:
        return check_encoding(text)
    except LookupError:
        raise ValueError("Python knows no such character set") from None


def _component(text: str) -> str:
    from .nextion import COMPONENT_NAME

    if not COMPONENT_NAME.fullmatch(text):
        raise ValueError("not a Nextion component name (like qr0 or page0.qr0)")
    return text


def _component_list(text: str) -> tuple[str, ...]:
    return tuple(_component(name) for name in text.split("+"))
