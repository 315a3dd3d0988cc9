"""Whether a display is there, without drawing on it: what
``scan2pay-terminal doctor`` asks before a shop opens.

- An I2C panel: its ``/dev/i2c-N`` node exists and a device answers at its
  address (an SMBus quick write, as ``i2cdetect`` probes; smbus2 is what
  luma's own I2C interface uses).
- An SPI panel: its ``/dev/spidevX.Y`` node exists and may be opened. SPI
  has no acknowledgement, so a panel that is not wired cannot be told from
  one that is: ``scan2pay-terminal test-pattern`` shows it.
- Nextion and ESC/POS: the serial port (or ``socket://`` URL) opens.
- PNG: frames can be written to its folder.
- console, noop, dummy: always there.

Nothing is drawn and no pin is set, so a daemon that runs meanwhile keeps
its screen (the kernel takes I2C transfers one at a time).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DisplayError, HardwareError

if TYPE_CHECKING:
    from smbus2 import SMBus

    from .luma_panel import LumaConfig
    from .registry import DisplayConfig

SERIAL_HINT = (
    "check the port (ls -l /dev/serial/by-id/) and that the service user is in the dialout group"
)


class ProbeFailure(HardwareError):
    """The display is not reachable: ``what`` was found, ``hint`` what to do."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what}; {hint}")
        self.what = what
        self.hint = hint


def probe(config: DisplayConfig) -> str:
    """What was found, or ``ProbeFailure``."""
    from .console import ConsoleConfig
    from .png_file import PngConfig
    from .registry import BuiltinConfig

    if isinstance(config, PngConfig):
        return _png(config.directory)
    if isinstance(config, ConsoleConfig):
        return "draws on this process's standard output"
    if isinstance(config, BuiltinConfig):
        return f"{config.kind} needs no device"
    from .escpos import EscPosConfig
    from .nextion import NextionConfig

    if isinstance(config, NextionConfig | EscPosConfig):
        return _serial(config.port, config.baud)
    from .luma_panel import LumaConfig

    if isinstance(config, LumaConfig):
        return _i2c(config) if config.bus == "i2c" else _spi(config)
    raise ProbeFailure(f"no way to probe a {type(config).__name__}", "report this as a bug")


def _png(directory: Path) -> str:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=directory, prefix=".doctor-")
        os.close(descriptor)
        os.unlink(name)
    except OSError as error:
        raise ProbeFailure(
            f"cannot write frames to {directory}: {error.strerror or error}",
            "make the folder writable by the service user, or name another",
        ) from error
    return f"frames can be written to {directory}"


def _serial(port: str, baud: int) -> str:
    from .serial_link import SerialLink

    try:
        SerialLink(port, baudrate=baud, name=port).close()
    except DisplayError as error:
        raise ProbeFailure(str(error), SERIAL_HINT) from error
    return f"{port} opens at {baud} baud"


def _i2c(config: LumaConfig) -> str:
    from smbus2 import SMBus

    from .luma_panel import ENABLE_HINTS, GROUP_HINTS

    node = Path(f"/dev/i2c-{config.port}")
    where = f"0x{config.address:02X}"
    if not node.exists():
        raise ProbeFailure(f"there is no {node}", ENABLE_HINTS["i2c"])
    try:
        bus = SMBus(config.port)
    except PermissionError as error:
        raise ProbeFailure(f"{node} may not be opened", GROUP_HINTS["i2c"]) from error
    except OSError as error:
        raise ProbeFailure(f"{node} does not open: {error}", ENABLE_HINTS["i2c"]) from error
    try:
        _quick(bus, config.address)
    except OSError as error:
        raise ProbeFailure(
            f"nothing answers at {where} on {node} ({error.strerror or error})",
            f"check the wiring (SDA, SCL, power) and the address: i2cdetect -y {config.port}",
        ) from error
    finally:
        with contextlib.suppress(OSError):
            bus.close()
    return f"a device answers at {where} on {node}"


def _quick(bus: SMBus, address: int) -> None:
    """An SMBus quick write, as i2cdetect probes most addresses; a bus that
    cannot do one is asked for a byte instead."""
    try:
        bus.write_quick(address)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        bus.read_byte(address)


def _spi(config: LumaConfig) -> str:
    from .luma_panel import ENABLE_HINTS, GROUP_HINTS

    node = Path(f"/dev/spidev{config.port}.{config.address}")
    if not node.exists():
        raise ProbeFailure(f"there is no {node}", ENABLE_HINTS["spi"])
    if not os.access(node, os.R_OK | os.W_OK):
        raise ProbeFailure(f"{node} may not be opened", GROUP_HINTS["spi"])
    return f"{node} is there (SPI has no answer to wait for: test-pattern shows the panel)"
