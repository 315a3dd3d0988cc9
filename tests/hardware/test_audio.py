"""The audio outputs: ``--audio`` values parsed and refused with a hint, the
wav output's numbered files and words, ALSA's player as a real ``aplay``
process, the volume."""

from __future__ import annotations

import array
import math
import shutil
from pathlib import Path

import pytest

from hardware.audio import (
    AlsaAudio,
    AudioConfig,
    Clip,
    NullAudio,
    WavDirAudio,
    parse_audio_spec,
    read_wav,
    scale,
)
from hardware.errors import AudioError, AudioSpecError


def _tone(seconds: float = 0.2, rate: int = 22050, level: int = 8000) -> bytes:
    samples = array.array(
        "h",
        (int(level * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))),
    )
    return samples.tobytes()


@pytest.mark.parametrize(
    ("spec", "config"),
    [
        ("null", AudioConfig("null")),
        ("alsa", AudioConfig("alsa")),
        ("alsa:plughw:1,0", AudioConfig("alsa", "plughw:1,0")),
        ("wav:/srv/sounds", AudioConfig("wav", "/srv/sounds")),
        (" wav:sounds/a,b ", AudioConfig("wav", "sounds/a,b")),
    ],
)
def test_each_form_parses(spec: str, config: AudioConfig) -> None:
    assert parse_audio_spec(spec) == config


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("", "the value is empty"),
        ("speaker", "'speaker' is not alsa, wav or null"),
        ("wav", "wav needs a directory"),
        ("wav:", "wav needs a directory"),
        ("null:x", "null takes no ':' part"),
        ("alsa:", "needs a device after the colon"),
        ("alsa:hw 0", "no spaces"),
    ],
)
def test_a_bad_value_says_why_and_lists_the_forms(spec: str, said: str) -> None:
    with pytest.raises(AudioSpecError) as caught:
        parse_audio_spec(spec)
    assert said in str(caught.value)
    assert "accepted --audio forms" in str(caught.value)


def test_the_wav_output_writes_numbered_files_with_their_words_and_continues(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "sounds"
    output = parse_audio_spec(f"wav:{folder}").open()
    assert isinstance(output, WavDirAudio)
    tone = _tone()
    output.play(Clip(tone, 22050, "Received one euro"))
    output.play(Clip(tone, 22050, "Received two euros"))
    again = WavDirAudio(folder)  # a restart goes on after the highest number
    again.play(Clip(tone, 16000, "Refunded one euro"))
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"announcement-00000{n}.{ext}" for n in (1, 2, 3) for ext in ("txt", "wav")]
    assert (folder / "announcement-000003.txt").read_text() == "Refunded one euro\n"
    pcm, rate = read_wav((folder / "announcement-000003.wav").read_bytes())
    assert (pcm, rate) == (tone, 16000)


def test_the_wav_output_says_which_folder_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AudioError, match="cannot use"):
        WavDirAudio(blocker / "sounds")
    folder = tmp_path / "sounds"
    output = WavDirAudio(folder)
    shutil.rmtree(folder)  # taken away under the running output
    with pytest.raises(AudioError, match="cannot write clip 1"):
        output.play(Clip(_tone(), 22050, "x"))


def test_alsa_plays_with_aplay_and_reports_what_it_said(tmp_path: Path) -> None:
    aplay = shutil.which("aplay")
    assert aplay, "aplay is not installed: run scripts/ensure-system-deps (alsa-utils)"
    # No sound card here: aplay refuses a device that does not exist, and
    # the output says so, as an AudioError naming it.
    output = parse_audio_spec("alsa:scan2pay_no_such_device").open()
    assert isinstance(output, AlsaAudio)
    with pytest.raises(AudioError) as caught:
        output.play(Clip(_tone(), 22050, "x"))
    assert "alsa:scan2pay_no_such_device: aplay exited" in str(caught.value)


def test_alsa_without_aplay_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AudioError, match="apt-get install alsa-utils"):
        AlsaAudio()


def test_null_takes_every_clip_and_the_volume_scales_samples() -> None:
    NullAudio().play(Clip(_tone(), 22050))
    tone = _tone(level=10000)
    half = array.array("h", scale(tone, 50))
    full = array.array("h", tone)
    assert max(half) == max(full) // 2
    assert scale(tone, 100) == tone
    assert set(array.array("h", scale(tone, 0))) == {0}


def test_a_clip_checks_itself() -> None:
    with pytest.raises(ValueError, match="not a sample rate"):
        Clip(b"", 8)
    with pytest.raises(ValueError, match="even number"):
        Clip(b"x", 22050)
    assert Clip(bytes(44100), 22050).seconds == 1.0
    with pytest.raises(ValueError, match="not a WAV"):
        read_wav(b"RIFF")
