"""The soundbox's settings: their defaults (no sound: a terminal upgraded
says nothing until told to), each form accepted, and every bad value
reported at once with its flag, variable and hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import ConfigError, load

IDS = {"merchant": "mer_" + "a" * 28, "terminal": "lane-1"}


def test_by_default_the_terminal_is_silent() -> None:
    config = load(IDS, env={})
    assert (config.audio, config.language, config.volume, config.chime) == ("null", "en", 100, True)
    assert config.sound_dir == "/var/lib/scan2pay/sound"
    assert (config.speech, config.late_after, config.speak_within) == ("espeak-ng", 30.0, 300.0)


def test_flags_environment_and_file_give_the_sound(tmp_path: Path) -> None:
    file = tmp_path / "terminal.toml"
    file.write_text('audio = "alsa:plughw:1,0"\nchime = false\nvolume = 60\nlanguage = "hi"\n')
    config = load(
        {**IDS, "language": "de"},
        config_file=str(file),
        env={"SCAN2PAY_SOUND_DIR": str(tmp_path), "SCAN2PAY_LATE_AFTER": "5"},
    )
    assert (config.audio, config.chime, config.volume) == ("alsa:plughw:1,0", False, 60)
    assert (config.language, config.sound_dir, config.late_after) == ("de", str(tmp_path), 5.0)
    assert load({**IDS, "chime": "off", "audio": "wav:/tmp/s"}, env={}).chime is False


def test_every_bad_sound_setting_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            {
                **IDS,
                "audio": "speaker",
                "language": "it",
                "volume": "150",
                "chime": "maybe",
                "speech": "piper:" + str(tmp_path / "none.onnx"),
                "late_after": "0",
                "speak_within": "never",
            },
            env={},
        )
    problems = "\n".join(caught.value.problems)
    for said in (
        "audio (--audio, SCAN2PAY_AUDIO): --audio 'speaker': 'speaker' is not alsa, wav or null",
        "language (--language, SCAN2PAY_LANGUAGE): 'it' is not a language the terminal speaks",
        "volume (--volume, SCAN2PAY_VOLUME): must be 0 to 100",
        "chime (--chime, SCAN2PAY_CHIME): 'maybe' is neither on nor off",
        "none.onnx: no such voice model",
        "late_after (--late-after, SCAN2PAY_LATE_AFTER)",
        "speak_within (--speak-within, SCAN2PAY_SPEAK_WITHIN)",
    ):
        assert said in problems
    assert len(caught.value.problems) == 7
