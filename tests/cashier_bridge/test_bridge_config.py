"""The bridge's settings and order checks: pure functions, no I/O but files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cashier_bridge.cli import build_parser
from cashier_bridge.config import ConfigError, load
from cashier_bridge.orders import InvalidOrder, build_order

KEY = "mk_0123456789abcdef_secret"


def settings_problems(flags: dict[str, Any], **options: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(flags, **options)
    return caught.value.problems


def test_defaults_need_only_the_key() -> None:
    settings = load({}, env={"SCAN2PAY_MERCHANT_KEY": KEY})
    config = settings.bridge
    assert config.psp_url == "http://127.0.0.1:8080"
    assert str(config.mqtt) == "mqtt://127.0.0.1:1883"
    assert config.terminal_id is None
    assert config.merchant_key == KEY
    assert settings.log_level is None  # each command has its own default


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bridge.toml"
    file.write_text(
        'psp_url = "http://file:1"\nterminal = "from-file"\nmqtt = "mqtt://file"\n'
        "screen_timeout = 7\n"
    )
    env = {
        "SCAN2PAY_MERCHANT_KEY": KEY,
        "SCAN2PAY_PSP_URL": "http://env:2/",
        "SCAN2PAY_TERMINAL": "from-env",
    }
    config = load({"terminal": "from-flag"}, config_file=str(file), env=env).bridge
    assert config.terminal_id == "from-flag"
    assert config.psp_url == "http://env:2"  # no trailing slash
    assert str(config.mqtt) == "mqtt://file:1883"
    assert config.screen_timeout == 7.0


def test_the_broker_login_comes_in_the_url_and_its_password_is_never_shown() -> None:
    config = load(
        {"mqtt": "mqtt://till:p%40ss@broker.local:8883"}, env={"SCAN2PAY_MERCHANT_KEY": KEY}
    ).bridge
    assert (config.mqtt.username, config.mqtt.password, config.mqtt.port) == ("till", "p@ss", 8883)
    assert "p@ss" not in repr(config) + str(config.mqtt)
    assert KEY not in repr(config)


def test_a_key_file_next_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "merchant.key").write_text(f"{KEY}\n")
    file = tmp_path / "bridge.toml"
    file.write_text('key_file = "merchant.key"\n')
    assert load({}, config_file=str(file), env={}).bridge.merchant_key == KEY


def test_a_key_file_flag_wins_over_the_key_in_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("mk_from_file")
    config = load({"key_file": str(key_file)}, env={"SCAN2PAY_MERCHANT_KEY": KEY}).bridge
    assert config.merchant_key == "mk_from_file"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("", "is empty"),
        (f"{KEY} second-word", "must hold only the key"),
        (f"{KEY}\nanother line", "must hold only the key"),
    ],
)
def test_key_file_problems_name_the_file_never_the_key(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    (problem,) = settings_problems({"key_file": str(key_file)}, env={})
    assert expected in problem
    assert str(key_file) in problem
    assert KEY not in problem


def test_the_key_is_never_a_flag_nor_a_config_file_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bridge.toml"
    file.write_text(f'merchant_key = "{KEY}"\n')
    problems = settings_problems({}, config_file=str(file), env={})
    assert any("'merchant_key' must not be in a config file" in p for p in problems)
    assert any(p.startswith("merchant key: missing") for p in problems)
    assert all(KEY not in p for p in problems)
    # Nor a flag: load ignores one, and the CLI has none.
    (problem,) = settings_problems({"merchant_key": KEY}, env={})
    assert problem.startswith("merchant key: missing")
    for command in ("checkout", "serve"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--merchant-key", KEY])
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        assert set(re.findall(r"--[\w-]*key[\w-]*", capsys.readouterr().out)) == {"--key-file"}


def test_two_keys_in_the_environment_are_one_too_many(tmp_path: Path) -> None:
    env = {"SCAN2PAY_MERCHANT_KEY": KEY, "SCAN2PAY_MERCHANT_KEY_FILE": str(tmp_path / "k")}
    (problem,) = settings_problems({}, env=env)
    assert "set one" in problem


def test_every_problem_at_once_with_a_hint(tmp_path: Path) -> None:
    file = tmp_path / "bridge.toml"
    file.write_text('colour = "blue"\n')
    problems = settings_problems(
        {
            "psp_url": "ftp://psp",
            "mqtt": "mqtt://host/path",
            "terminal": "lane 1",
            "screen_timeout": "0",
            "psp_timeout": "x",
            "poll_interval": "100",
            "log_level": "LOUD",
        },
        config_file=str(file),
        env={},
        require_terminal=True,
    )
    assert len(problems) == 9
    joined = "\n".join(problems)
    for expected in (
        "unknown key 'colour'",
        "psp_url (--psp-url, SCAN2PAY_PSP_URL): 'ftp://psp' is not an http(s) URL; expected",
        "mqtt (--mqtt, SCAN2PAY_MQTT)",
        "terminal (--terminal, SCAN2PAY_TERMINAL): terminal_id may contain only",
        "screen_timeout (--screen-timeout, SCAN2PAY_SCREEN_TIMEOUT): '0' is not from 0.1 to 300",
        "psp_timeout",
        "poll_interval",
        "log_level (--log-level, SCAN2PAY_LOG_LEVEL): 'LOUD' is not a level",
        "merchant key: missing",
    ):
        assert expected in joined


def test_a_config_file_that_is_not_toml(tmp_path: Path) -> None:
    file = tmp_path / "bridge.toml"
    file.write_text("this is = = not toml")
    (problem,) = settings_problems({}, config_file=str(file), env={})
    assert "not TOML" in problem


# Orders.


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [("12.34", "EUR", 1234), ("12.340", "EUR", 1234), ("1200", "JPY", 1200), ("1.5", "KWD", 1500)],
)
def test_an_amount_in_major_units_is_read_exactly(major: str, currency: str, minor: int) -> None:
    order = build_order(
        order_id="A-1", currency=currency, amount_major=major, default_terminal="lane-1"
    )
    assert order.amount == minor
    assert order.terminal_id == "lane-1"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"amount_major": "12.345"}, "amount_major: EUR has 2 decimal places; '12.345' has more"),
        ({"amount_major": "1e3"}, "amount_major: '1e3' is not an amount like 12.34"),
        ({"amount_major": "-1"}, "amount_major: '-1' is not an amount like 12.34"),
        ({"amount": 1, "amount_major": "1"}, "give exactly one"),
        ({}, "give exactly one"),
        ({"amount": True}, "amount: amount must be an integer"),
        ({"amount": 12.34}, "amount: amount must be an integer"),
        ({"amount": 0}, "amount: amount must be greater than zero"),
        ({"amount": 1, "currency": "eur"}, "currency: currency must be a three-letter upper-case"),
        ({"amount_major": "1", "currency": "XAU"}, "currency: XAU is not an ISO 4217 currency"),
        ({"amount": 1, "expires_in": 0}, "expires_in: expires_in must be from 1 to 86400 seconds"),
        ({"amount": 1, "description": "x" * 201}, "description: description must be at most 200"),
        ({"amount": 1, "description": "a\nb"}, "description must be plain text: U+000A"),
        ({"amount": 1, "terminal_id": None, "default": None}, "terminal_id: no terminal given"),
    ],
)
def test_order_problems(fields: dict[str, Any], problem: str) -> None:
    given: dict[str, Any] = {"order_id": "A-1", "currency": "EUR", "terminal_id": "lane-1"}
    given.update(fields)
    default = given.pop("default", "lane-9")
    with pytest.raises(InvalidOrder) as caught:
        build_order(default_terminal=default, **given)
    (found,) = caught.value.problems
    assert problem in str(found)
