"""The settings layers, called directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan2pay_common import setting_values
from scan2pay_common.config_layers import Layers, read_toml
from scan2pay_common.errors import InvalidValue

FIELDS = {
    "mqtt": ("--mqtt", "X_MQTT", "mqtt://host:port"),
    "wait": ("--wait", "X_WAIT", "seconds, like 5"),
}


def test_flags_over_environment_over_file() -> None:
    layers = Layers.gather(
        FIELDS,
        {"mqtt": "mqtt://flag", "wait": None},
        env={"X_MQTT": "mqtt://env", "X_WAIT": "7"},
        from_file={"mqtt": "mqtt://file", "wait": 3},
        file_name="x.toml",
    )
    assert layers.raw == {"mqtt": "mqtt://flag", "wait": "7"}
    assert layers.source == {"mqtt": "flag", "wait": "env"}
    assert layers.problems == []


def test_every_problem_is_kept_with_its_flag_variable_and_hint() -> None:
    layers = Layers.gather(
        FIELDS,
        {"wait": "soon"},
        env={},
        from_file={"colour": "red", "secret": "x"},
        file_name="x.toml",
        not_in_file={"secret": "must not be in a file"},
    )
    layers.take("wait", lambda v: setting_values.seconds(v, low=0, high=10))
    layers.take("mqtt", str)  # not given: nothing taken, no problem
    assert layers.problems == [
        "x.toml: 'secret' must not be in a file",
        "x.toml: unknown key 'colour'; known: mqtt, wait",
        "wait (--wait, X_WAIT): 'soon' is not from 0 to 10; expected seconds, like 5",
    ]
    assert layers.values == {}


def test_take_stores_under_another_name() -> None:
    layers = Layers.gather(FIELDS, {"wait": "2.5"}, env={})
    layers.take("wait", float, to="wait_seconds")
    assert layers.values == {"wait_seconds": 2.5}


def test_read_toml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("mqtt = \n")
    with pytest.raises(InvalidValue, match=r"bad\.toml: not TOML"):
        read_toml(str(bad))
    with pytest.raises(InvalidValue, match=r"missing\.toml"):
        read_toml(str(tmp_path / "missing.toml"))
    good = tmp_path / "good.toml"
    good.write_text('mqtt = "mqtt://h:1"\n')
    assert read_toml(str(good)) == {"mqtt": "mqtt://h:1"}


@pytest.mark.parametrize(
    ("raw", "switched_on"),
    [
        *[("on", True), (" Yes ", True), ("TRUE", True), ("1", True), (True, True)],
        *[("off", False), ("No", False), ("false", False), ("0", False), (False, False)],
    ],
)
def test_a_switch_reads_the_words_for_on_and_off(raw: object, switched_on: bool) -> None:
    assert setting_values.on_off(raw) is switched_on


@pytest.mark.parametrize("raw", ["maybe", "", "2", 1.5])
def test_a_switch_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidValue, match="is neither on nor off"):
        setting_values.on_off(raw)
