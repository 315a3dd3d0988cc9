"""The panel sizes and colour modes the terminal's screens are drawn for:
the small OLEDs and LCDs a shop fits, upright and turned."""

from __future__ import annotations

from hardware.base import Geometry

GEOMETRIES = {
    "128x64": Geometry(128, 64, "1"),
    "128x32": Geometry(128, 32, "1"),
    "128x128": Geometry(128, 128, "RGB"),
    "240x240": Geometry(240, 240, "RGB"),
    "320x240": Geometry(320, 240, "RGB"),
    "64x128": Geometry(64, 128, "1"),
    "240x320": Geometry(240, 320, "RGB"),
    "200x96": Geometry(200, 96, "L"),
}
