"""luma.examples' display flags and keys, the form luma's own demos and most
panel tutorials use::

    --display ssd1306 --interface i2c --i2c-port 1 --i2c-address 0x3C
    --display st7789 --interface spi --spi-port 0 --spi-device 0 --width 240 --height 240

``compose`` turns them into the compact ``--display`` value
(``hardware/registry.py``) that everything else reads, so that both forms
end in the same value: ``ssd1306:i2c:1:0x3C``, ``st7789:spi:0:0,width=240,height=240``.

The names are luma.core.cmdline's own (its parser's destinations; a test
holds this list to that parser). A key left out means what it means in
luma's demos: its default comes from that parser, and the value names it
only where it differs from the compact form's default. That parser is built
only here, for a luma panel: building it imports every luma driver, and
luma's import starts threads that a daemon on another display should not
carry (docs/performance.md). ``width`` and ``height`` are the exception:
luma's demos default them to 128x64 for every panel, and here a panel left
without them has its driver's own size (240x240 for an st7789).

The emulators take luma's ``width``, ``height``, ``mode`` and (png only)
``rotate`` too: ``--display png:DIR --width 240 --height 240 --mode RGB``
is ``png:DIR,size=240x240,mode=RGB``, as luma.emulator's devices take them.

A value in the compact form says everything itself: with one that names a
bus or has options, luma's keys are an error rather than a guess at which
of the two was meant.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import spec_values as values
from .errors import DisplaySpecError

# What scan2pay drives of luma's interfaces (luma.core.interface.serial).
INTERFACES = ("i2c", "spi", "gpio_cs_spi")
EMULATORS = ("png", "console", "noop", "dummy")
BY_COMMAND = ("nextion", "escpos")  # displays that draw by command: no luma keys

I2C_KEYS = ("i2c_port", "i2c_address")
SPI_KEYS = ("spi_port", "spi_device", "spi_bus_speed", "gpio_data_command", "gpio_reset")
GEOMETRY_KEYS = ("width", "height", "rotate", "mode")

# key -> (parse, hint): the value luma's flag takes here, and what to write.
_VALUES: dict[str, tuple[Callable[[str], Any], str]] = {
    "interface": (str, ", ".join(INTERFACES)),
    "i2c_port": (values.i2c_port, "the I2C bus number, like 1 (/dev/i2c-1)"),
    "i2c_address": (values.i2c_address, "the panel's I2C address, like 0x3C"),
    "spi_port": (values.spi_number, "the SPI bus number, like 0 (/dev/spidev0.*)"),
    "spi_device": (values.spi_number, "the SPI chip select line, like 0 (CE0)"),
    "spi_bus_speed": (values.spi_speed, "the SPI clock in Hz, like 8000000"),
    "gpio_data_command": (values.gpio, "the data/command pin, a BCM GPIO number like 24"),
    "gpio_reset": (values.gpio_or_none, "the reset pin, a BCM GPIO number like 25, or none"),
    "gpio_backlight": (values.gpio_or_none, "the backlight pin, a BCM GPIO like 18, or none"),
    "gpio_chip_select": (values.gpio, "the chip select pin for gpio_cs_spi, a BCM GPIO"),
    "width": (values.positive_int, "the panel's width in pixels, like 128"),
    "height": (values.positive_int, "the panel's height in pixels, like 64"),
    "rotate": (values.rotation, "quarter turns clockwise: 0, 1, 2 or 3"),
    "mode": (values.choice(*values.MODES), "an emulator's colours: 1, L or RGB"),
}
KEYS = tuple(_VALUES)


def flag(key: str) -> str:
    """luma.examples' flag for ``key``: ``i2c_port`` -> ``--i2c-port``."""
    return "--" + key.replace("_", "-")


# key -> (flag, environment variable, hint), as terminal/config.py lists settings.
FIELDS: dict[str, tuple[str, str, str]] = {
    key: (flag(key), f"SCAN2PAY_{key.upper()}", f"{hint} (as luma.examples' {flag(key)})")
    for key, (_, hint) in _VALUES.items()
}


@dataclass
class Composed:
    """The compact value (None when it cannot be made), and each problem as
    (the key it is about, what is wrong)."""

    spec: str | None
    problems: list[tuple[str, str]] = field(default_factory=list)


def is_bare_name(display: str) -> bool:
    """A value with no bus and no options: in luma's form, a driver name."""
    return bool(display) and not any(mark in display for mark in ":,")


def compose(display: object, given: Mapping[str, object]) -> Composed:
    """The compact value for ``display`` and luma's keys ``given`` (key ->
    value as a flag, the environment or a TOML file gave it). With no luma
    key, a compact value comes back as it is, and a bare luma driver name
    takes luma's defaults (``ssd1306`` is ``ssd1306:i2c:1:0x3C``)."""
    text = None if display is None else str(display).strip()
    result = Composed(text)
    parsed = _parse_values(given, result.problems)
    if not text:
        if given:
            names = ", ".join(given)
            missing = f"missing: luma's keys ({names}) go with display = a driver, like ssd1306"
            result.problems.append(("display", missing))
        return result
    head, comma, _ = text.partition(",")
    kind = head.partition(":")[0]
    if kind in EMULATORS:
        result.spec = _emulator(text, kind, bool(comma), parsed, result.problems)
    elif kind in BY_COMMAND:
        for key in given:
            result.problems.append((key, f"is a luma key; {kind} takes none"))
    elif not is_bare_name(text):
        if given:
            names = ", ".join(given)
            result.problems.append(
                (
                    "display",
                    f"{text!r} is the compact form, which names the bus itself; luma's keys "
                    f"({names}) go with display = {kind!r} alone: give one form, not both",
                )
            )
    elif given or _is_luma_driver(text):
        result.spec = _panel(text, given, parsed, result.problems)
    # Else a bare name luma does not know either: the registry says what is wrong.
    if result.problems:
        result.spec = None
    return result


def _is_luma_driver(name: str) -> bool:
    from . import luma_panel

    try:
        luma_panel.find_driver(name)
    except DisplaySpecError:
        return False
    return True


def _parse_values(given: Mapping[str, object], problems: list[tuple[str, str]]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, raw in given.items():
        parse, _ = _VALUES[key]
        try:
            parsed[key] = parse(str(raw).strip())
        except ValueError as error:
            problems.append((key, str(error)))
    return parsed


def _emulator(
    text: str,
    kind: str,
    has_options: bool,
    parsed: Mapping[str, Any],
    problems: list[tuple[str, str]],
) -> str | None:
    for key in sorted(set(parsed) - set(GEOMETRY_KEYS)):
        problems.append((key, f"is for luma panels; {kind} has no bus"))
    geometry = {key: parsed[key] for key in GEOMETRY_KEYS if key in parsed}
    if not geometry:
        return text
    if has_options:
        names = ", ".join(geometry)
        problems.append(
            (
                "display",
                f"{text!r} has its options already; give {names} there or as luma's keys, not both",
            )
        )
        return None
    options: list[str] = []
    if ("width" in geometry) != ("height" in geometry):
        key = "width" if "width" in geometry else "height"
        problems.append((key, f"{kind} takes width and height together, as its size"))
    elif "width" in geometry:
        options.append(f"size={geometry['width']}x{geometry['height']}")
    if "mode" in geometry:
        if kind == "console":
            problems.append(("mode", "console is black and white; it takes no mode"))
        else:
            options.append(f"mode={geometry['mode']}")
    if "rotate" in geometry:
        if kind == "png":
            options.append(f"rotate={geometry['rotate']}")
        else:
            problems.append(("rotate", f"is for luma panels and png; {kind} does not turn"))
    return ",".join([text, *options])


def _panel(
    driver: str,
    given: Mapping[str, object],
    parsed: Mapping[str, Any],
    problems: list[tuple[str, str]],
) -> str | None:
    from . import luma_panel

    try:
        driver_class = luma_panel.find_driver(driver)
    except DisplaySpecError as error:
        problems.append(("display", str(error)))
        return None
    defaults = luma_defaults()
    interface = parsed.get("interface", defaults["interface"])
    if interface not in INTERFACES:
        problems.append(("interface", _unknown_interface(interface)))
        return None
    lcd = luma_panel.is_lcd(driver_class)
    _refuse_misplaced(driver, interface, lcd, given, problems)

    def value(key: str) -> Any:
        if key in parsed:
            return parsed[key]
        return _VALUES[key][0](str(defaults[key]))

    compact = luma_panel.LumaConfig(driver)  # the compact form's defaults
    options: list[str] = []
    if interface == "i2c":
        head = f"{driver}:i2c:{value('i2c_port')}:0x{value('i2c_address'):02X}"
    else:
        head = f"{driver}:spi:{value('spi_port')}:{value('spi_device')}"
        dc, rst = value("gpio_data_command"), value("gpio_reset")
        speed = value("spi_bus_speed")
        cs = value("gpio_chip_select") if interface == "gpio_cs_spi" else None
        if interface == "gpio_cs_spi" and "gpio_chip_select" not in given:
            problems.append(
                (
                    "gpio_chip_select",
                    f"missing: gpio_cs_spi needs the GPIO the panel's CS is wired to"
                    f" (luma's default, {cs}, is its data/command pin)",
                )
            )
        options += _differing(("dc", dc, compact.dc_gpio), ("rst", rst, compact.rst_gpio))
        options += [f"cs={cs}"] if cs is not None else []
        options += _differing(("speed", speed, luma_panel.SPI_DEFAULT_SPEED_HZ))
    if lcd:
        options += _differing(("light", value("gpio_backlight"), compact.light_gpio))
    options += [f"{key}={parsed[key]}" for key in ("width", "height") if key in parsed]
    options += _differing(("rotate", parsed.get("rotate", defaults["rotate"]), 0))
    return ",".join([head, *options])


def _refuse_misplaced(
    driver: str,
    interface: str,
    lcd: bool,
    given: Mapping[str, object],
    problems: list[tuple[str, str]],
) -> None:
    """The keys that mean nothing for this panel on this interface."""
    wrong: dict[str, str] = {}
    if interface == "i2c":
        wrong |= {key: "is for the spi interfaces; interface is i2c" for key in SPI_KEYS}
    else:
        wrong |= {key: f"is for interface i2c; interface is {interface}" for key in I2C_KEYS}
    if interface != "gpio_cs_spi":
        wrong["gpio_chip_select"] = f"is for interface gpio_cs_spi; interface is {interface}"
    if not lcd:
        wrong["gpio_backlight"] = f"is for luma.lcd panels; {driver} is an OLED"
    wrong["mode"] = "is for the emulators (png, dummy, noop); a panel has its driver's colours"
    for key in given:
        if key in wrong:
            problems.append((key, wrong[key]))


def _differing(*settings: tuple[str, object, object]) -> list[str]:
    """``option=value`` for each setting whose value is not the compact
    form's default: ``none`` for a line that is not wired."""
    return [
        f"{option}={'none' if value is None else value}"
        for option, value, default in settings
        if value != default
    ]


def _unknown_interface(interface: str) -> str:
    known = ", ".join(INTERFACES)
    if interface in luma_interfaces():
        return f"{interface!r} is one of luma's interfaces scan2pay does not drive; use {known}"
    return f"unknown interface {interface!r}; known: {known}"


def luma_interfaces() -> list[str]:
    """Every interface luma knows (luma.examples' --interface choices)."""
    from luma.core import cmdline

    return list(cmdline.get_interface_types())


@functools.cache
def luma_parser() -> argparse.ArgumentParser:
    """luma.examples' own parser (luma.core.cmdline), for its defaults."""
    from luma.core import cmdline

    parser = argparse.ArgumentParser(add_help=False)
    built: argparse.ArgumentParser = cmdline.create_parser(
        "luma.examples", parser=parser, autocomplete=False
    )
    return built


def luma_defaults() -> dict[str, Any]:
    """What luma's demos take for each key left out."""
    parser = luma_parser()
    return {key: parser.get_default(key) for key in KEYS}
