"""The metrics and readiness settings: flags over the environment, and
every problem named at once."""

from __future__ import annotations

import pytest

from psp_server.core.errors import ConfigError
from psp_server.runtime import config


def test_metrics_are_on_the_public_port_by_default() -> None:
    settings = config.load({}, env={})
    assert (settings.metrics, settings.metrics_port, settings.metrics_host) == (
        True,
        None,
        "127.0.0.1",
    )
    assert settings.ready_relay_lag == 60.0


def test_flags_win_over_the_environment() -> None:
    env = {
        "SCAN2PAY_METRICS_PORT": "9464",
        "SCAN2PAY_METRICS_HOST": "10.0.0.5",
        "SCAN2PAY_READY_RELAY_LAG": "30",
    }
    settings = config.load({"metrics_port": "0"}, env=env)
    assert (settings.metrics_port, settings.metrics_host) == (0, "10.0.0.5")
    assert settings.ready_relay_lag == 30.0
    assert config.load({}, env={"SCAN2PAY_METRICS": "off"}).metrics is False
    assert config.load({"metrics_port": "none"}, env=env).metrics_port is None


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        config.load({"metrics": "maybe", "metrics_port": "70000", "ready_relay_lag": "-1"}, env={})
    problems = "\n".join(raised.value.problems)
    for name in ("metrics (SCAN2PAY_METRICS)", "metrics_port", "ready_relay_lag"):
        assert name in problems, problems
    with pytest.raises(ConfigError, match="given with metrics off"):
        config.load({"metrics": "off", "metrics_port": "9464"}, env={})


@pytest.mark.parametrize("given", ["70000", "-1", "80x", "0x50"])
def test_the_metrics_port_and_the_public_port_refuse_what_is_no_port(given: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load({"port": given, "metrics_port": given}, env={})
    problems = "\n".join(raised.value.problems)
    assert f"port (SCAN2PAY_PORT): {given!r} is not a port" in problems, problems
    assert f"metrics_port (SCAN2PAY_METRICS_PORT): {given!r} is not a port" in problems, problems


def test_both_ports_take_the_ends_of_the_range() -> None:
    assert config.load({"port": "0", "metrics_port": "65535"}, env={}).metrics_port == 65535
    assert config.load({"port": "65535"}, env={}).port == 65535
