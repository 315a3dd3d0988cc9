"""The soundbox's files as a test reads them: the WAVs ``--audio wav:DIR``
writes, each with its words beside it, their length and loudness; and
espeak-ng, which the tests run for real (scripts/ensure-system-deps
installs it)."""

from __future__ import annotations

import array
import math
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

# Where the tests leave one announcement per language, for a person to hear.
RESULTS = Path(__file__).resolve().parents[2] / "test-results" / "soundbox"


def require_espeak() -> str:
    found = shutil.which("espeak-ng")
    assert found, (
        "espeak-ng is not installed: run scripts/ensure-system-deps, or apt-get install espeak-ng"
    )
    return found


@dataclass(frozen=True)
class Heard:
    """One announcement file: its words, seconds and RMS level (of 32767)."""

    path: Path
    text: str
    seconds: float
    rms: float


def heard(directory: Path) -> list[Heard]:
    """The announcements in ``directory``, oldest first."""
    found = []
    for path in sorted(directory.glob("announcement-*.wav")):
        with wave.open(str(path), "rb") as source:
            assert (source.getnchannels(), source.getsampwidth()) == (1, 2)
            rate = source.getframerate()
            samples = array.array("h", source.readframes(source.getnframes()))
        rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
        text = path.with_suffix(".txt").read_text().strip()
        found.append(Heard(path, text, len(samples) / rate, rms))
    return found
