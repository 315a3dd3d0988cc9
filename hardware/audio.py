"""The audio output every sound backend implements, chosen by name like a
display (``--audio``):

    alsa[:DEVICE]   plays through ALSA with ``aplay`` (Debian's alsa-utils);
                    DEVICE is ALSA's own name (``plughw:1,0``,
                    ``default``), everything after the first colon
    wav:DIR         writes each clip as a numbered WAV file in DIR, with its
                    words beside it in a ``.txt`` file: for tests, emulation
                    and a shop that wants a record
    null            plays nothing

A ``Clip`` is 16-bit mono PCM at its own rate, with the words it says.
``play`` blocks until the clip is out (ALSA) or on disk (wav): the terminal
calls it from a thread of its own, never from the event loop, and never
from the thread that draws the display. It raises ``AudioError``, never a
bare ``OSError``.
"""

from __future__ import annotations

import abc
import array
import io
import re
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AudioError, AudioSpecError
from .numbered_files import highest_number, write_atomically

FORMS = """accepted --audio forms:
  alsa[:DEVICE]   e.g. alsa, alsa:plughw:1,0 (plays with aplay, from alsa-utils)
  wav:DIR         e.g. wav:/var/lib/scan2pay/sounds (one WAV file per announcement)
  null            (no sound)"""

SAMPLE_WIDTH = 2  # bytes: 16-bit signed, little-endian, as espeak-ng writes
_CLIP_NAME = re.compile(r"announcement-(\d+)\.wav")


@dataclass(frozen=True, slots=True)
class Clip:
    """Mono 16-bit PCM (``pcm``, little-endian) at ``rate`` Hz, and the words
    it says (for the log and the wav output's record)."""

    pcm: bytes = field(repr=False)
    rate: int
    text: str = ""

    def __post_init__(self) -> None:
        if self.rate < 1000:
            raise ValueError(f"sample rate {self.rate} is not a sample rate")
        if len(self.pcm) % SAMPLE_WIDTH:
            raise ValueError("16-bit PCM has an even number of bytes")

    @property
    def seconds(self) -> float:
        return len(self.pcm) / SAMPLE_WIDTH / self.rate

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(self.rate)
            out.writeframes(self.pcm)
        return buffer.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """The PCM and rate of a 16-bit mono WAV; ``ValueError`` for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            if source.getnchannels() != 1 or source.getsampwidth() != SAMPLE_WIDTH:
                raise ValueError("not 16-bit mono")
            return source.readframes(source.getnframes()), source.getframerate()
    except (wave.Error, EOFError) as error:
        raise ValueError(f"not a WAV: {error}") from None


def scale(pcm: bytes, volume: int) -> bytes:
    """``pcm`` at ``volume`` percent (0-100) of its level."""
    if volume >= 100:
        return pcm
    samples = array.array("h", pcm)
    if sys.byteorder != "little":  # pragma: no cover - the Pi and PCs are little-endian
        samples.byteswap()
    scaled = array.array("h", (sample * volume // 100 for sample in samples))
    if sys.byteorder != "little":  # pragma: no cover
        scaled.byteswap()
    return scaled.tobytes()


class AudioOutput(abc.ABC):
    name: str = "audio"

    @abc.abstractmethod
    def play(self, clip: Clip) -> None:
        """Hands ``clip`` to the device; returns once it is played or kept."""

    def close(self) -> None:  # noqa: B027 - most outputs hold nothing open
        """Releases the device."""


class NullAudio(AudioOutput):
    name = "null"

    def play(self, clip: Clip) -> None:
        return None


class WavDirAudio(AudioOutput):
    """Each clip as ``announcement-000001.wav`` (numbers continue after the
    highest already there) and its words as ``announcement-000001.txt``,
    the words first: a reader that sees the WAV finds them. Both are
    written to a temporary name and renamed, so no reader sees half a file."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.name = f"wav:{self.directory}"
        try:
            self.last_number = highest_number(self.directory, _CLIP_NAME)
        except OSError as error:
            raise AudioError(self.name, f"cannot use {self.directory}: {error}") from error

    def play(self, clip: Clip) -> None:
        number = self.last_number + 1
        stem = self.directory / f"announcement-{number:06d}"
        try:
            write_atomically(stem.with_suffix(".txt"), clip.text.encode() + b"\n")
            write_atomically(stem.with_suffix(".wav"), clip.wav_bytes())
        except OSError as error:
            raise AudioError(self.name, f"cannot write clip {number}: {error}") from error
        self.last_number = number


class AlsaAudio(AudioOutput):
    """Plays through ``aplay`` (alsa-utils), one process a clip: a clip a
    minute at most, and nothing of ALSA stays open in the daemon between."""

    def __init__(self, device: str | None = None, *, aplay: str | None = None) -> None:
        self.device = device
        self.name = f"alsa:{device}" if device else "alsa"
        found = aplay or shutil.which("aplay")
        if found is None:
            raise AudioError(self.name, "aplay is not installed: sudo apt-get install alsa-utils")
        self._aplay = found

    def play(self, clip: Clip) -> None:
        command = [self._aplay, "-q", "-t", "wav"]
        if self.device:
            command += ["-D", self.device]
        command.append("-")
        try:
            done = subprocess.run(  # noqa: S603 - a fixed program, arguments are ours
                command,
                input=clip.wav_bytes(),
                capture_output=True,
                timeout=clip.seconds + 10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise AudioError(self.name, f"aplay failed: {error}") from error
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip()[-200:]
            raise AudioError(self.name, f"aplay exited {done.returncode}: {said}")


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """A checked ``--audio`` value: ``kind`` alsa, wav or null, and its
    device or directory."""

    kind: str
    target: str | None = None

    def open(self) -> AudioOutput:
        if self.kind == "alsa":
            return AlsaAudio(self.target)
        if self.kind == "wav":
            return WavDirAudio(Path(self.target or "."))
        return NullAudio()


def parse_audio_spec(spec: str) -> AudioConfig:
    """Parses ``spec`` without opening anything; ``AudioSpecError`` says why not."""
    text = spec.strip()
    kind, has_target, target = text.partition(":")
    problem: str | None = None
    if kind == "null":
        if has_target:
            problem = "null takes no ':' part"
    elif kind == "wav":
        if not target:
            problem = "wav needs a directory: wav:DIR"
    elif kind == "alsa":
        if has_target and not target:
            problem = "alsa: needs a device after the colon, or none at all"
        elif any(c.isspace() for c in target):
            problem = "an ALSA device name has no spaces"
    else:
        problem = f"{kind!r} is not alsa, wav or null" if kind else "the value is empty"
    if problem is not None:
        raise AudioSpecError(f"--audio {spec!r}: {problem}\n{FORMS}")
    return AudioConfig(kind, target or None)
