"""Speech with the real espeak-ng: every language's announcement is heard
(not silence), parts are rendered once and then read from the cache (keyed
by engine, voice, rate and text), the chime and the volume. One WAV per
language is left in test-results/soundbox/ for a person to listen to."""

from __future__ import annotations

import array
import math
import shutil
from pathlib import Path

import pytest

from hardware.audio import WavDirAudio
from terminal.announce_text import LANGUAGES, announcement
from terminal.speech import (
    CHIME_SECONDS,
    Espeak,
    PhraseCache,
    Speaker,
    SpeechError,
    chime,
    trim_silence,
)
from tests.support.sound import RESULTS, heard, require_espeak


@pytest.fixture(autouse=True)
def _espeak() -> None:
    require_espeak()


def _rms(pcm: bytes) -> float:
    samples = array.array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def test_every_language_says_its_announcement_and_one_wav_each_is_kept(tmp_path: Path) -> None:
    folder = RESULTS / "languages"
    shutil.rmtree(folder, ignore_errors=True)
    for language in LANGUAGES:
        speaker = Speaker(PhraseCache(tmp_path / "cache", Espeak(language)))
        currency = "INR" if language == "hi" else "EUR"
        said = announcement("received", 1234, currency, language)
        clip = speaker.clip(said)
        assert clip.text == said.text
        assert 1.0 < clip.seconds < 10.0, (language, clip.seconds)
        assert _rms(clip.pcm) > 500, language
        output = WavDirAudio(folder / language)
        output.play(clip)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))
    assert files == sorted(f"{language}/announcement-000001.wav" for language in LANGUAGES)
    assert heard(folder / "hi")[0].text == "बारह रुपये चौंतीस पैसे प्राप्त हुए"


def test_a_part_is_rendered_once_then_read_from_the_cache(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path / "cache", Espeak("en"))
    speaker = Speaker(cache)
    first = speaker.clip(announcement("received", 1234, "EUR", "en"))
    assert cache.rendered == 4  # "Received", "twelve", "euros", "thirty-four"
    again = speaker.clip(announcement("received", 3412, "EUR", "en"))
    assert cache.rendered == 4  # the same four words, in another order
    assert first.pcm != again.pcm
    assert len(list((tmp_path / "cache").glob("*.wav"))) == 4
    # Another process with the same cache renders nothing either.
    other = PhraseCache(tmp_path / "cache", Espeak("en"))
    assert Speaker(other).clip(announcement("received", 1234, "EUR", "en")).pcm == first.pcm
    assert other.rendered == 0
    assert other.size_on_disk() > 0


def test_the_cache_key_holds_engine_voice_rate_volume_and_text(tmp_path: Path) -> None:
    paths = {
        PhraseCache(tmp_path, Espeak("en")).path("twelve"),
        PhraseCache(tmp_path, Espeak("en", rate=120)).path("twelve"),
        PhraseCache(tmp_path, Espeak("de")).path("twelve"),
        PhraseCache(tmp_path, Espeak("en", volume=50)).path("twelve"),
        PhraseCache(tmp_path, Espeak("en")).path("zwölf"),
    }
    assert len(paths) == 5
    # A damaged file is rendered again, not played.
    cache = PhraseCache(tmp_path, Espeak("en"))
    cache.path("twelve").write_bytes(b"not a wav")
    pcm, rate = cache.get("twelve")
    assert rate == 22050
    assert _rms(pcm) > 500
    assert cache.rendered == 1


def test_the_chime_comes_first_unless_turned_off_and_the_volume_scales(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path, Espeak("en"))
    said = announcement("received", 100, "EUR", "en")
    with_chime = Speaker(cache).clip(said)
    without = Speaker(cache, chime=False).clip(said)
    quiet = Speaker(PhraseCache(tmp_path, Espeak("en", volume=25)), volume=25).clip(said)
    assert with_chime.pcm[: len(chime(22050))] == chime(22050)
    assert with_chime.seconds - without.seconds >= CHIME_SECONDS
    # espeak-ng's amplitude is near enough to linear; the chime is scaled exactly.
    assert 0.18 < _rms(quiet.pcm) / _rms(with_chime.pcm) < 0.3
    assert max(array.array("h", quiet.pcm[: len(chime(22050))])) < 9000 * 0.26
    with pytest.raises(ValueError, match="volume is 0 to 100"):
        Speaker(cache, volume=101)


def test_silence_is_trimmed_and_a_missing_engine_says_how_to_install_it(tmp_path: Path) -> None:
    loud = array.array("h", [0, 0, 5000, -5000, 0, 0, 0]).tobytes()
    assert trim_silence(loud) == array.array("h", [5000, -5000]).tobytes()
    assert trim_silence(bytes(8)) == bytes(8)
    with pytest.raises(SpeechError, match="apt-get install espeak-ng"):
        Espeak("en", program="scan2pay-no-such-espeak").render("x")
