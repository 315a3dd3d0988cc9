"""Files numbered in a folder, written whole: the PNG display's frames and
the wav output's announcements. A new run goes on after the highest number
already there, so runs never overwrite each other; every file is written to
a temporary name beside it and renamed into place, so a reader never sees
half a file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path


def highest_number(directory: Path, name: re.Pattern[str]) -> int:
    """Makes ``directory`` if it is missing and returns the highest number
    (``name``'s first group) among its entries whose whole name ``name``
    matches; 0 when none does. Raises ``OSError``."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = [
        int(match.group(1))
        for entry in os.scandir(directory)
        if (match := name.fullmatch(entry.name))
    ]
    return max(numbers, default=0)


def write_atomically(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data`` by a rename. Raises ``OSError``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
