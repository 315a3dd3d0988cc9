"""The display as the daemon holds it: opened on first use, and after a
failure closed and opened again on the next frame.

A panel that is missing at boot (not plugged in, I2C not enabled, a wrong
address) or that loses power later is the daemon's to ride out, not
systemd's: a daemon that exited on it would be restarted forever. Opening
again rather than writing on matters for the panel that lost power: an
SSD1306 forgets its set-up with its power, and only a new open sends it
again; a USB serial adapter plugged back in is a new file to open.

Every call blocks (buses, serial ports): the daemon makes them in its
painter thread, one at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from hardware.base import Display, Frame
from hardware.errors import HardwareError

from .screens import View, content

log = logging.getLogger(__name__)


def draw(display: Display, view: View, now: int) -> None:
    """Renders (for pixel displays) and shows one frame. Blocking."""
    geometry = display.geometry
    image = None
    if geometry is not None:
        from .render import render

        image = render(view, geometry, now)
    display.show(Frame(content(view, now), image))


class Panel:
    """``open_display`` makes the device (it raises ``HardwareError`` when
    the device is not there). A ``Display`` handed over already open is
    kept through failures: there is nothing to open it again with."""

    def __init__(self, display: Display | Callable[[], Display]) -> None:
        self.device: Display | None = None
        if isinstance(display, Display):
            self.device = display
            self._open: Callable[[], Display] = lambda: display
            self._reopens = False
        else:
            self._open = display
            self._reopens = True

    def show(self, view: View, now: int) -> None:
        """Raises ``HardwareError`` when the device cannot be opened or does
        not take the frame; the next call opens it again."""
        self.paint(draw, view, now)

    def paint(self, drawer: Callable[..., None], *args: object) -> None:
        """``drawer(device, *args)`` on the device, opened if need be: for
        frames of other kinds (the pairing screen), with the same recovery."""
        device = self.device
        if device is None:
            device = self.device = self._open()
        try:
            drawer(device, *args)
        except HardwareError:
            if self._reopens:
                self.device = None
                _close_quietly(device)
            raise

    def close(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            _close_quietly(device)


def _close_quietly(device: Display) -> None:
    # A device that failed often fails its close too (the bus is gone);
    # there is nothing left to do about it.
    with contextlib.suppress(HardwareError, OSError):
        device.close()
