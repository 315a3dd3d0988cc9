"""A clock that a test moves for a PSP in other processes: the system's
clock plus the milliseconds written in a file, read at every ``now_ms``, so
that each worker of ``psp-server serve --workers N`` sees a move at once.
The test and the server each hold one on the same path."""

from __future__ import annotations

import os
from pathlib import Path

from scan2pay_common.clock import SYSTEM_CLOCK


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now_ms(self) -> int:
        return SYSTEM_CLOCK.now_ms() + self._offset_ms()

    def _offset_ms(self) -> int:
        try:
            return int(self.path.read_text())
        except FileNotFoundError:
            return 0

    def advance_to(self, at_ms: int) -> None:
        """Moves on until ``now_ms()`` is at least ``at_ms``; never back."""
        step = at_ms - self.now_ms()
        if step > 0:
            # Written aside and renamed over: a reader never sees half a number.
            aside = self.path.with_name(self.path.name + ".new")
            aside.write_text(str(self._offset_ms() + step))
            os.replace(aside, self.path)
