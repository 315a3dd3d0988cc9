"""Pixel panels driven by luma: every luma.oled device (ssd1306, sh1106,
ssd1309, ssd1322, ssd1327, ssd1351, sh1107, ...) and the luma.lcd panels
(st7735, st7789, ili9341, ...) over I2C or SPI.

luma does the driving; this module picks the driver class by name, builds
luma's serial interface, converts each frame to the panel's size and mode,
and turns luma's and the bus's failures into ``DisplayError`` with a hint at
the usual cause.

The geometry is the panel's after rotation. Greyscale OLEDs (ssd1322,
ssd1325, ssd1327, ...) report mode "L": luma takes RGB for them and keeps 4
bits of grey, so the renderer need only draw grey.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import luma.core.error
from luma.core.interface.serial import (
    gpio_cs_spi,
    i2c,
    noop,
    spi,
)
from luma.oled.device.color import (
    color_device,
)
from luma.oled.device.greyscale import (
    greyscale_device,
)

from .base import ColourMode, Display, Frame, Geometry
from .errors import DisplayError, DisplaySpecError
from .imaging import fit

Bus = Literal["i2c", "spi"]

I2C_DEFAULT_PORT = 1
I2C_DEFAULT_ADDRESS = 0x3C
SPI_DEFAULT_PORT = 0
SPI_DEFAULT_DEVICE = 0
# luma cannot set the I2C clock (the kernel does: dtparam=i2c_arm_baudrate in
# config.txt, 100 kHz unless set); this figure only feeds the estimate.
I2C_DEFAULT_SPEED_HZ = 400_000
SPI_DEFAULT_SPEED_HZ = 8_000_000  # luma's default
# The clocks luma's spi() accepts; it asserts on any other.
SPI_SPEEDS_MHZ = (0.5, 1, 2, 4, 8, 16, 20, 24, 28, 32, 36, 40, 44, 48, 50, 52)
SPI_SPEEDS_HZ = tuple(int(mhz * 1_000_000) for mhz in SPI_SPEEDS_MHZ)
# On I2C each byte is followed by the receiver's ACK bit.
BITS_PER_BYTE: dict[Bus, int] = {"i2c": 9, "spi": 8}

# Character and segment devices in luma's lists: they show text, not images.
NOT_PIXEL_PANELS = frozenset({"ws0010", "winstar_weh", "hd44780", "ht1621"})
# Named in errors when luma.lcd is not installed, so the hint can be specific.
LCD_EXAMPLES = ("st7735", "st7789", "ili9341", "ili9486", "ili9488", "pcd8544", "st7567")
LCD_HINT = "pip install luma.lcd"

# Where a module luma imports on demand comes from.
MODULE_HINTS = {
    "smbus2": "pip install smbus2",
    "spidev": "pip install spidev",
    "RPi": "pip install RPi.GPIO (on a Raspberry Pi 5: pip install rpi-lgpio)",
}
ENABLE_HINTS: dict[Bus, str] = {
    "i2c": "enable I2C with raspi-config (Interface Options > I2C) and check the port number",
    "spi": "enable SPI with raspi-config (Interface Options > SPI) and check port and device",
}
GROUP_HINTS: dict[Bus, str] = {
    "i2c": "add the user to the i2c group (sudo usermod -aG i2c $USER) and log in again",
    "spi": "add the user to the spi and gpio groups (sudo usermod -aG spi,gpio $USER)"
    " and log in again",
}


@dataclass(frozen=True, slots=True)
class LumaConfig:
    """One luma panel. ``address`` is the I2C address, or for SPI the chip
    select (spidev's device number). ``None`` leaves a setting to luma."""

    driver: str
    bus: Bus = "i2c"
    port: int = I2C_DEFAULT_PORT
    address: int = I2C_DEFAULT_ADDRESS
    width: int | None = None
    height: int | None = None
    rotate: int = 0
    speed_hz: int | None = None
    dc_gpio: int = 24  # SPI data/command pin (luma's default)
    rst_gpio: int | None = 25  # SPI reset pin (luma's default); None if not wired
    light_gpio: int | None = 18  # luma.lcd backlight pin (luma's default); None if not wired
    # SPI chip select driven on this GPIO (luma's gpio_cs_spi) rather than by
    # the controller's CE0/CE1 line; None: the controller's, as usual.
    cs_gpio: int | None = None

    @property
    def name(self) -> str:
        where = f"0x{self.address:02X}" if self.bus == "i2c" else str(self.address)
        return f"{self.driver}:{self.bus}:{self.port}:{where}"

    @property
    def bus_speed_hz(self) -> int:
        default = I2C_DEFAULT_SPEED_HZ if self.bus == "i2c" else SPI_DEFAULT_SPEED_HZ
        return self.speed_hz or default

    def open(self) -> LumaPanel:
        return LumaPanel(self)


def driver_names() -> list[str]:
    """The pixel panels luma can drive here (luma.lcd's only if installed)."""
    names = [n for n in _module_drivers("luma.oled.device") if n not in NOT_PIXEL_PANELS]
    names += [n for n in _module_drivers("luma.lcd.device") if n not in NOT_PIXEL_PANELS]
    return sorted(names)


def find_driver(name: str) -> Any:
    """luma's device class called ``name``, or ``DisplaySpecError``."""
    for module_name in ("luma.oled.device", "luma.lcd.device"):
        if name in _module_drivers(module_name) and name not in NOT_PIXEL_PANELS:
            return getattr(importlib.import_module(module_name), name)
    if name in NOT_PIXEL_PANELS:
        raise DisplaySpecError(f"{name} is a character display; scan2pay needs a pixel panel")
    if name in LCD_EXAMPLES and not _module_drivers("luma.lcd.device"):
        raise DisplaySpecError(f"{name} is a luma.lcd panel; luma.lcd is not installed: {LCD_HINT}")
    known = ", ".join(driver_names())
    extra = "" if _module_drivers("luma.lcd.device") else f" (more with {LCD_HINT})"
    raise DisplaySpecError(f"unknown luma driver {name!r}; known: {known}{extra}")


def is_lcd(driver: Any) -> bool:
    """Whether ``driver`` is a luma.lcd panel with a GPIO backlight."""
    return str(driver.__module__).startswith("luma.lcd")


def check_config(config: LumaConfig) -> None:
    """Raises ``DisplaySpecError`` if luma would refuse ``config``, by building
    the driver over luma's ``noop`` interface: it checks the size against
    luma's own table and touches no bus or pin."""
    driver = find_driver(config.driver)
    _check_size_options(driver, config)
    with _luma_errors(config, "check"):
        _build_device(driver, config, noop())


class LumaPanel(Display):
    """A luma device behind the ``Display`` interface. ``serial_interface``
    replaces the I2C/SPI interface (tests pass a recorder)."""

    def __init__(self, config: LumaConfig, *, serial_interface: Any = None) -> None:
        self.name = config.name
        self.config = config
        driver = find_driver(config.driver)
        _check_size_options(driver, config)
        with _luma_errors(config, "open"):
            interface = serial_interface or _open_interface(config)
        try:
            with _luma_errors(config, "initialise"):
                self._device = _build_device(driver, config, interface)
        except BaseException:
            interface.cleanup()
            raise
        device = self._device
        self._geometry = Geometry(device.width, device.height, _colour_mode(device))
        self._closed = False

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    def show(self, frame: Frame) -> None:
        if frame.image is None:
            raise ValueError(f"{self.name} is a pixel display: the frame needs an image")
        image = fit(frame.image, self._device.size, self._device.mode)
        with _luma_errors(self.config, "show"):
            self._device.display(image)

    def close(self) -> None:
        """Blanks the panel and releases the bus (luma's ``cleanup``)."""
        if self._closed:
            return
        self._closed = True
        with _luma_errors(self.config, "close"):
            self._device.cleanup()

    def bus_seconds_per_frame(self) -> float:
        bits = frame_bytes(self._device) * BITS_PER_BYTE[self.config.bus]
        return bits / self.config.bus_speed_hz


def frame_bytes(device: Any) -> int:
    """The bytes luma sends for one full frame of ``device``."""
    if isinstance(device, greyscale_device):
        bits = 4  # two pixels a byte, also in mode "1"
    elif device.mode == "1":
        bits = 1
    elif isinstance(device, color_device):
        bits = 16  # RGB 5-6-5
    else:
        bits = 24  # luma.lcd sends R, G, B bytes; the panel keeps 6 bits of each
    width: int = device.width
    height: int = device.height
    return math.ceil(width * height * bits / 8)


def _module_drivers(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    return list(getattr(module, "__all__", []))


def _check_size_options(driver: Any, config: LumaConfig) -> None:
    if config.width is None and config.height is None:
        return
    parameters = inspect.signature(driver.__init__).parameters
    if "width" not in parameters or "height" not in parameters:
        raise DisplaySpecError(f"{config.driver} has a fixed size: drop width= and height=")


def _build_device(driver: Any, config: LumaConfig, interface: Any) -> Any:
    kwargs: dict[str, Any] = {"rotate": config.rotate}
    if config.width is not None:
        kwargs["width"] = config.width
    if config.height is not None:
        kwargs["height"] = config.height
    if is_lcd(driver):
        if isinstance(interface, noop) or config.light_gpio is None:
            kwargs["backlight"] = _no_backlight
        else:
            kwargs["gpio_LIGHT"] = config.light_gpio
    return driver(interface, **kwargs)


def _no_backlight(on: bool) -> None:
    """For a backlight wired straight to power: nothing to switch."""


def _open_interface(config: LumaConfig) -> Any:
    if config.bus == "i2c":
        return i2c(port=config.port, address=config.address)
    spi_options: dict[str, Any] = {
        "port": config.port,
        "device": config.address,
        "bus_speed_hz": config.bus_speed_hz,
        "gpio_DC": config.dc_gpio,
        "gpio_RST": config.rst_gpio,
    }
    if config.cs_gpio is not None:
        return gpio_cs_spi(gpio_CS=config.cs_gpio, **spi_options)
    return spi(**spi_options)


def _colour_mode(device: Any) -> ColourMode:
    if device.mode == "1":
        return "1"
    return "L" if isinstance(device, greyscale_device) else "RGB"


@contextlib.contextmanager
def _luma_errors(config: LumaConfig, action: str) -> Iterator[None]:
    """Turns what luma and the bus raise into the hardware layer's errors."""
    name, bus = config.name, config.bus
    try:
        yield
    except luma.core.error.DeviceDisplayModeError as error:
        raise DisplaySpecError(f"{name}: a size the driver lacks (luma: {error})") from error
    except luma.core.error.DevicePermissionError as error:
        raise DisplayError(name, f"{error}; {GROUP_HINTS[bus]}") from error
    except luma.core.error.DeviceNotFoundError as error:
        # Opening: no /dev/i2c-N or spidev node. Later: no panel answers at
        # the address (luma reports an I2C EIO as "not found on address").
        if action == "open":
            hint = ENABLE_HINTS[bus]
        else:
            hint = f"check the wiring and the address (i2cdetect -y {config.port})"
        raise DisplayError(name, f"{error}; {hint}") from error
    except luma.core.error.Error as error:  # e.g. UnsupportedPlatform: no GPIO here
        raise DisplayError(name, f"{action} failed: {error}") from error
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        hint = MODULE_HINTS.get(top, f"pip install {top}")
        raise DisplaySpecError(f"{name}: {bus} needs the Python module {top}: {hint}") from error
    except OSError as error:
        raise DisplayError(name, f"{action} failed: {error}") from error
    except RuntimeError as error:  # rpi-lgpio: "GPIO busy" (another process holds a line)
        raise DisplayError(name, f"{action} failed: {error}") from error
