"""A display emulator that writes each frame to a directory as a PNG.

Frames are numbered ``frame-000001.png``, ``frame-000002.png``, ... (a new run
continues after the highest number already there, so runs never overwrite
each other), and ``latest.png`` always holds the newest frame. Every file is
written to a temporary name and renamed into place, so a viewer polling
``latest.png`` never reads half a file.

``rotate`` mounts the emulated panel turned, as luma's ``rotate`` does: the
geometry the renderer draws for is the panel's after the turn, and each file
is the panel's own ``size``, showing the screen turned by that many quarter
turns clockwise, as luma sends it to a real panel.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from .base import Display, Frame, Geometry
from .errors import DisplayError
from .imaging import fit
from .numbered_files import highest_number, write_atomically

DEFAULT_GEOMETRY = Geometry(128, 64, "1")
LATEST = "latest.png"
_FRAME_NAME = re.compile(r"frame-(\d+)\.png")


@dataclass(frozen=True, slots=True)
class PngConfig:
    directory: Path
    geometry: Geometry = DEFAULT_GEOMETRY
    rotate: int = 0

    def open(self) -> PngFileDisplay:
        return PngFileDisplay(self.directory, self.geometry, rotate=self.rotate)


def frame_name(number: int) -> str:
    return f"frame-{number:06d}.png"


class PngFileDisplay(Display):
    def __init__(
        self, directory: str | Path, geometry: Geometry = DEFAULT_GEOMETRY, *, rotate: int = 0
    ) -> None:
        self.directory = Path(directory)
        self.name = f"png:{self.directory}"
        self._rotate = rotate % 4
        # What the renderer draws on: the panel as the customer sees it.
        turned = self._rotate % 2 == 1
        self._geometry = (
            Geometry(geometry.height, geometry.width, geometry.mode) if turned else geometry
        )
        try:
            self.last_number = highest_number(self.directory, _FRAME_NAME)
        except OSError as error:
            raise DisplayError(self.name, f"cannot use {self.directory}: {error}") from error

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    def show(self, frame: Frame) -> None:
        if frame.image is None:
            raise ValueError(f"{self.name} is a pixel display: the frame needs an image")
        image = fit(frame.image, self._geometry.size, self._geometry.mode)
        if self._rotate:
            # As luma's preprocess turns a frame for a rotated panel.
            image = image.rotate(-90 * self._rotate, expand=True)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        number = self.last_number + 1
        try:
            write_atomically(self.directory / frame_name(number), buffer.getvalue())
            write_atomically(self.directory / LATEST, buffer.getvalue())
        except OSError as error:
            raise DisplayError(self.name, f"cannot write frame {number}: {error}") from error
        self.last_number = number
