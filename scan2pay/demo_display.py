"""The terminal's display in the demo: each new screen is drawn on the
console, and the latest rendered frame is kept for the simulated wallet to
scan, as a phone would scan the real panel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from hardware.base import Display, Frame, Geometry
from hardware.console import image_to_text


@dataclass(frozen=True)
class Shown:
    at: float  # time.monotonic()
    kind: str | None
    frame: Frame


class DemoDisplay(Display):
    name = "demo"

    def __init__(self, console: TextIO | None, geometry: Geometry) -> None:
        self._console = console
        self._geometry = geometry
        self._lock = threading.Lock()
        self._latest: Shown | None = None
        self.screens: list[Shown] = []  # the first frame of each new screen
        self._listeners: list[Callable[[Shown], None]] = []

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    @property
    def latest(self) -> Shown | None:
        with self._lock:
            return self._latest

    def add_listener(self, listener: Callable[[Shown], None]) -> None:
        """``listener`` hears every frame, in the thread that shows it (the
        daemon's worker thread, not the event loop)."""
        with self._lock:
            self._listeners.append(listener)

    def first_shown(self, kind: str, after: float = 0.0) -> Shown | None:
        with self._lock:
            return next((s for s in self.screens if s.kind == kind and s.at >= after), None)

    def show(self, frame: Frame) -> None:
        shown = Shown(time.monotonic(), frame.content.kind, frame)
        with self._lock:
            previous = self._latest
            self._latest = shown
            new_screen = previous is None or (previous.kind, previous.frame.content.qr_url) != (
                shown.kind,
                frame.content.qr_url,
            )
            if new_screen:
                self.screens.append(shown)
            listeners = list(self._listeners)
        # The countdown redraws every second; the console shows each screen
        # once, scrolling (not redrawn in place), so the timeline stays readable.
        if new_screen and self._console is not None and frame.image is not None:
            self._console.write(image_to_text(frame.image) + "\n")
            self._console.flush()
        for listener in listeners:
            listener(shown)
