"""Offline speech: the words of an announcement (``terminal.announce_text``)
made into one ``Clip``, from parts rendered once and kept on disk.

- ``Espeak`` runs ``espeak-ng -v LANG --stdout`` (Debian's espeak-ng, no
  network) and reads the WAV it writes. ``Piper`` runs the piper voice
  engine where it is installed with a voice model; nothing else needs it.
- ``PhraseCache`` keeps each part ("Received", "twelve", "euros") as a WAV
  file named by a digest of engine, voice, rate and text. A Pi Zero 2 W
  takes a few hundred milliseconds to start espeak-ng; a cached part is a
  file read. Files are written to a temporary name and renamed, so a
  crash leaves no half part.
- ``Speaker`` joins a chime (a synthesized two-tone, which can be turned
  off) and the parts, each trimmed of its silence, with short gaps, at
  the volume set: espeak-ng renders the parts at that volume (the cache's
  key holds it), so that a clip is only joined, never scaled sample by
  sample in Python. All of it blocks: the terminal runs it in its sound
  thread.
"""

from __future__ import annotations

import array
import hashlib
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hardware.audio import Clip, read_wav, scale
from hardware.numbered_files import write_atomically

from .announce_text import Announcement


class SpeechError(Exception):
    """The speech engine is missing or failed; the message says which."""


class Engine(Protocol):
    @property
    def identity(self) -> str:
        """Engine, voice, rate (and volume, where the engine sets it): what a
        cached part depends on besides its text."""
        ...

    @property
    def sets_volume(self) -> bool:
        """Whether the parts come at the volume set: then a clip needs no
        pass over its samples to scale it (a Pi Zero's time)."""
        ...

    def render(self, text: str) -> tuple[bytes, int]:
        """``text`` as 16-bit mono PCM and its rate."""
        ...


# espeak-ng's voices for the announcements' languages.
ESPEAK_VOICES = {"en": "en", "de": "de", "fr": "fr-fr", "es": "es", "pt": "pt", "hi": "hi"}
DEFAULT_RATE = 165  # words a minute; espeak-ng's own default is 175
_TIMEOUT = 20


@dataclass(frozen=True, slots=True)
class Espeak:
    language: str
    rate: int = DEFAULT_RATE
    volume: int = 100  # espeak-ng's amplitude, 0 to 100 here (its default is 100)
    program: str = "espeak-ng"
    sets_volume = True

    @property
    def voice(self) -> str:
        return ESPEAK_VOICES.get(self.language, self.language)

    @property
    def identity(self) -> str:
        return f"espeak-ng/{self.voice}/{self.rate}/{self.volume}"

    def render(self, text: str) -> tuple[bytes, int]:
        found = shutil.which(self.program)
        if found is None:
            raise SpeechError("espeak-ng is not installed: sudo apt-get install espeak-ng")
        command = [found, "-v", self.voice, "-s", str(self.rate), "-a", str(self.volume)]
        command += ["--stdout", "--", text]
        return _run(command, None, "espeak-ng")


@dataclass(frozen=True, slots=True)
class Piper:
    """The piper engine with a voice ``model`` (its ``.onnx``), where installed."""

    model: str
    program: str = "piper"
    sets_volume = False

    @property
    def identity(self) -> str:
        return f"piper/{Path(self.model).name}"

    def render(self, text: str) -> tuple[bytes, int]:
        found = shutil.which(self.program)
        if found is None:
            raise SpeechError("piper is not installed; use the espeak-ng engine")
        command = [found, "--model", self.model, "--output_file", "/dev/stdout"]
        return _run(command, text.encode(), "piper")


def _run(command: list[str], given: bytes | None, name: str) -> tuple[bytes, int]:
    try:
        done = subprocess.run(  # noqa: S603 - our program, text passed after "--" or on stdin
            command, input=given, capture_output=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SpeechError(f"{name} failed: {error}") from error
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-200:]
        raise SpeechError(f"{name} exited {done.returncode}: {said}")
    try:
        return read_wav(done.stdout)
    except ValueError as error:
        raise SpeechError(f"{name} wrote no 16-bit mono WAV: {error}") from error


class PhraseCache:
    """Parts of speech on disk, one WAV a part, rendered on first use."""

    def __init__(self, directory: str | Path, engine: Engine) -> None:
        self.directory = Path(directory)
        self.engine = engine
        self.rendered = 0  # parts this process had to render (misses)

    def path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.engine.identity}\0{text}".encode()).hexdigest()[:32]
        return self.directory / f"{key}.wav"

    def get(self, text: str) -> tuple[bytes, int]:
        path = self.path(text)
        try:
            return read_wav(path.read_bytes())
        except (OSError, ValueError):
            pass  # not cached yet (or unreadable): render it again
        pcm, rate = self.engine.render(text)
        pcm = trim_silence(pcm)
        self.rendered += 1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(path, Clip(pcm, rate).wav_bytes())
        except OSError as error:
            raise SpeechError(f"cannot keep a spoken part in {self.directory}: {error}") from error
        return pcm, rate

    def size_on_disk(self) -> int:
        try:
            return sum(entry.stat().st_size for entry in os.scandir(self.directory))
        except OSError:
            return 0


QUIET = 300  # of 32767: below this a sample counts as silence when trimming
GAP_SECONDS = 0.08
CHIME_SECONDS = 0.35


class Speaker:
    """Makes an announcement's clip from cached parts."""

    def __init__(self, cache: PhraseCache, *, volume: int = 100, chime: bool = True) -> None:
        if not 0 <= volume <= 100:
            raise ValueError("volume is 0 to 100")
        self.cache = cache
        self.volume = volume
        self.chime = chime
        self._chime: dict[int, bytes] = {}  # by rate, at the volume set

    def warm(self, texts: list[str]) -> None:
        """Renders ``texts`` now, so that the first payment finds them cached."""
        for text in texts:
            self.cache.get(text)

    def clip(self, said: Announcement) -> Clip:
        pieces: list[bytes] = []
        rate = 0
        for part in said.parts:
            pcm, part_rate = self.cache.get(part)
            if rate and part_rate != rate:
                raise SpeechError(f"parts at {rate} and {part_rate} Hz: clear the cache")
            rate = part_rate
            pieces.append(pcm)
        gap = silence(GAP_SECONDS, rate)
        body = gap.join(pieces) + gap
        if not self.cache.engine.sets_volume:
            body = scale(body, self.volume)
        if self.chime:
            if rate not in self._chime:
                self._chime[rate] = scale(chime(rate), self.volume)
            body = self._chime[rate] + silence(GAP_SECONDS * 2, rate) + body
        return Clip(body, rate, said.text)


def silence(seconds: float, rate: int) -> bytes:
    return bytes(2 * int(seconds * rate))


def chime(rate: int) -> bytes:
    """Two soft tones, E6 then C6, each fading out: a till's "ding-dong"."""
    samples = array.array("h")
    half = int(CHIME_SECONDS * rate / 2)
    for frequency in (1318.5, 1046.5):
        for n in range(half):
            fade = (1 - n / half) ** 2
            samples.append(int(9000 * fade * math.sin(2 * math.pi * frequency * n / rate)))
    if sys.byteorder != "little":  # pragma: no cover - the Pi and PCs are little-endian
        samples.byteswap()
    return samples.tobytes()


def trim_silence(pcm: bytes) -> bytes:
    """``pcm`` without the silence an engine puts before and after words."""
    samples = array.array("h", pcm)
    if sys.byteorder != "little":  # pragma: no cover - the Pi and PCs are little-endian
        samples.byteswap()
    start = next((i for i, s in enumerate(samples) if abs(s) >= QUIET), None)
    if start is None:
        return pcm
    end = len(samples) - next(i for i, s in enumerate(reversed(samples)) if abs(s) >= QUIET)
    return pcm[2 * start : 2 * end]
