"""The hardware layer's exceptions. ``OSError`` from a bus or port is turned
into ``DisplayError`` (``AudioError`` for a sound output) at the boundary,
carrying which device failed."""

from __future__ import annotations


class HardwareError(Exception):
    """Base of everything the hardware layer raises on purpose."""


class DisplaySpecError(HardwareError):
    """A ``--display`` value that names no display we can build."""


class DisplayError(HardwareError):
    """The device failed (I2C EIO, a serial port unplugged): worth a retry."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class AudioSpecError(HardwareError):
    """An ``--audio`` value that names no audio output we can build."""


class AudioError(HardwareError):
    """The sound output failed (aplay missing or refusing, a full disk)."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
