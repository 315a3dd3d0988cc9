"""The display interface every backend implements, with ``noop`` and ``dummy``
versions in the manner of luma.core's devices.

A frame carries both forms of one screen: ``content`` (what to say: a QR URL
and lines of text) for displays that draw by command, and ``image`` (already
rendered to the display's geometry) for pixel displays. The terminal renders
the image only for displays that have a geometry.

``show`` blocks (I2C, SPI, serial writes): the daemon calls it off the event
loop. It raises ``DisplayError`` on failure, never a bare ``OSError``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # Pillow is loaded by what draws images, not by every display
    from PIL import Image

ColourMode = Literal["1", "L", "RGB"]


@dataclass(frozen=True, slots=True)
class Geometry:
    """What the renderer needs to know of a pixel display, after rotation."""

    width: int
    height: int
    mode: ColourMode = "1"

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"display size {self.width}x{self.height} is not a size")
        if self.mode not in ("1", "L", "RGB"):
            raise ValueError(f"colour mode {self.mode!r} is not 1, L or RGB")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True, slots=True)
class Content:
    """A screen as words: the QR to show (if any) and the lines around it,
    most important first."""

    qr_url: str | None = None  # what the QR encodes: a URL, or an EMV payload (docs/emv.md)
    lines: tuple[str, ...] = ()
    # What kind of screen this is ("idle", "qr", "paid", "cancelled",
    # "expired"), for devices that treat screens differently: a printer
    # prints outcomes, not the idle screen. None when not known.
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    content: Content
    image: Image.Image | None = field(default=None, compare=False)


class Display(abc.ABC):
    """One output device. ``geometry`` is None for displays that draw by
    command (they read ``frame.content``); pixel displays read ``frame.image``."""

    name: str = "display"

    @property
    @abc.abstractmethod
    def geometry(self) -> Geometry | None: ...

    @abc.abstractmethod
    def show(self, frame: Frame) -> None:
        """Puts the frame on the device; returns once it is there."""

    def close(self) -> None:  # noqa: B027 - most devices have nothing to release
        """Releases the device (blanks it where that makes sense)."""

    def bus_seconds_per_frame(self) -> float | None:
        """The time the bus needs to carry one full frame, the floor under the
        daemon's own time to screen; None where it is not known."""
        return None


class NoopDisplay(Display):
    """Accepts every frame and does nothing: for a daemon with no screen."""

    name = "noop"

    def __init__(self, geometry: Geometry | None = None) -> None:
        self._geometry = geometry

    @property
    def geometry(self) -> Geometry | None:
        return self._geometry

    def show(self, frame: Frame) -> None:
        return None


class DummyDisplay(Display):
    """Keeps every frame it is shown, in memory: for tests."""

    name = "dummy"

    def __init__(self, geometry: Geometry | None = Geometry(128, 64, "1")) -> None:
        self._geometry = geometry
        self.frames: list[Frame] = []

    @property
    def geometry(self) -> Geometry | None:
        return self._geometry

    @property
    def last(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def show(self, frame: Frame) -> None:
        self.frames.append(frame)
