"""A pyserial port for the displays that draw by command (Nextion, ESC/POS).

``port`` is a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``) or any
pyserial URL (``socket://printer.local:9100`` for a network receipt printer,
``loop://`` for tests). The port is opened at once, so a wrong path fails at
start-up; after a failed write it is closed and reopened by the next write,
so a USB adapter that was unplugged and plugged back in recovers on the
daemon's next retry.
"""

from __future__ import annotations

import contextlib
import math

import serial

from .errors import DisplayError

# Bits on the wire per byte for 8N1: start, eight data bits, stop.
BITS_PER_SERIAL_BYTE = 10


class SerialLink:
    def __init__(self, port: str, *, baudrate: int, name: str) -> None:
        self.port_name = port
        self.baudrate = baudrate
        self.name = name
        self._port: serial.SerialBase | None = None
        self._clean = False
        self._open()

    @property
    def fresh(self) -> bool:
        """True from an open or a failed write until the next write succeeds:
        the device may still hold half an instruction from before."""
        return not self._clean

    def seconds_for(self, size: int) -> float:
        """The time ``size`` bytes take on the wire."""
        return size * BITS_PER_SERIAL_BYTE / self.baudrate

    def write(self, data: bytes) -> None:
        """Writes ``data`` and waits until it has left the port."""
        port = self._port if self._port is not None else self._open()
        # Twice the wire time, in whole seconds: only a stalled device times
        # out, and the port is reconfigured (a termios call) only on a change.
        timeout = 2 + math.ceil(2 * self.seconds_for(len(data)))
        try:
            if port.write_timeout != timeout:
                port.write_timeout = timeout
            port.write(data)
            port.flush()
        except OSError as error:  # SerialException is an OSError
            self.close()
            raise DisplayError(self.name, f"write to {self.port_name} failed: {error}") from error
        self._clean = True

    def close(self) -> None:
        self._clean = False
        port, self._port = self._port, None
        if port is not None:
            # A port that is already gone has nothing left to release.
            with contextlib.suppress(OSError):
                port.close()

    def _open(self) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(self.port_name, baudrate=self.baudrate)
        except (OSError, ValueError) as error:
            raise DisplayError(self.name, f"cannot open {self.port_name}: {error}") from error
        self._port = port
        return port
