"""scan2pay_common.mqtt_url: mqtt[s]://[user[:password]@]host[:port]."""

from __future__ import annotations

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.mqtt_url import DEFAULT_PORT, DEFAULT_TLS_PORT, MqttTarget


def test_default_port_is_1883() -> None:
    assert DEFAULT_PORT == 1883


def test_host_only_takes_the_defaults() -> None:
    assert MqttTarget.parse("mqtt://127.0.0.1") == MqttTarget("127.0.0.1", 1883, None, None)


def test_trailing_slash_is_allowed() -> None:
    assert MqttTarget.parse("mqtt://broker.local/") == MqttTarget("broker.local", 1883)


def test_port() -> None:
    assert MqttTarget.parse("mqtt://broker.local:1884") == MqttTarget("broker.local", 1884)


def test_user_and_password() -> None:
    target = MqttTarget.parse("mqtt://psp:s3cret@broker.local:8883")
    assert target == MqttTarget("broker.local", 8883, "psp", "s3cret")


def test_user_without_password() -> None:
    assert MqttTarget.parse("mqtt://psp@broker.local") == MqttTarget("broker.local", 1883, "psp")


def test_user_and_password_are_percent_decoded() -> None:
    target = MqttTarget.parse("mqtt://u%40shop:p%3Aw%40rd%2F@broker.local")
    assert target.username == "u@shop"
    assert target.password == "p:w@rd/"  # noqa: S105 - the made-up password of the URL above


def test_ipv6_host() -> None:
    target = MqttTarget.parse("mqtt://[::1]:1884")
    assert target.host == "::1"
    assert target.port == 1884


def test_str_shows_user_host_and_port() -> None:
    assert str(MqttTarget.parse("mqtt://psp:s3cret@broker.local:1884")) == (
        "mqtt://psp@broker.local:1884"
    )
    assert str(MqttTarget.parse("mqtt://broker.local")) == "mqtt://broker.local:1883"


@pytest.mark.parametrize(
    "url",
    ["mqtt://psp:s3cret@broker.local:1884", "mqtt://:s3cret@broker.local", "mqtt://psp:s3cret@h"],
)
def test_str_never_shows_the_password(url: str) -> None:
    assert "s3cret" not in str(MqttTarget.parse(url))
    assert "s3cret" not in f"{MqttTarget.parse(url)}"


def test_repr_never_shows_the_password() -> None:
    # A settings object that holds the target is itself repr'd into logs and
    # tracebacks; the password must not ride along.
    assert "s3cret" not in repr(MqttTarget.parse("mqtt://psp:s3cret@broker.local"))


@pytest.mark.parametrize(
    "url",
    [
        "http://broker.local:1883",
        "https://broker.local",
        "mqtts://",
        "mqtts://broker.local/x",
        "MQTTS+ws://broker.local",
        "tcp://broker.local:1883",
        "ws://broker.local",
        "broker.local:1883",
        "broker.local",
        "",
        "mqtt://",
        "mqtt:///",
        "mqtt://:1883",
        "mqtt://broker.local/scan2pay",
        "mqtt://broker.local/a/b",
        "mqtt://broker.local?clean=1",
        "mqtt://broker.local#frag",
        "mqtt://broker.local:99999",
        "mqtt://broker.local:-1",
        "mqtt://broker.local:abc",
    ],
)
def test_bad_urls_are_invalid_mqtt_url(url: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        MqttTarget.parse(url)
    assert caught.value.code == "invalid_mqtt_url"


def test_port_zero_is_rejected_not_replaced_by_the_default() -> None:
    # Port 0 names no broker; silently connecting to 1883 instead hides the mistake.
    with pytest.raises(InvalidValue) as caught:
        MqttTarget.parse("mqtt://broker.local:0")
    assert caught.value.code == "invalid_mqtt_url"


def test_plain_mqtt_is_not_tls() -> None:
    assert MqttTarget.parse("mqtt://broker.local").tls is False


def test_mqtts_means_tls_on_port_8883_by_default() -> None:
    assert DEFAULT_TLS_PORT == 8883
    target = MqttTarget.parse("mqtts://mer_1%2Ftill-1:s3cret@broker.local")
    assert target == MqttTarget("broker.local", 8883, "mer_1/till-1", "s3cret", tls=True)


def test_mqtts_port() -> None:
    assert MqttTarget.parse("mqtts://broker.local:18883") == MqttTarget(
        "broker.local", 18883, tls=True
    )


def test_str_of_mqtts_says_mqtts_and_hides_the_password() -> None:
    text = str(MqttTarget.parse("mqtts://psp:s3cret@broker.local"))
    assert text == "mqtts://psp@broker.local:8883"
