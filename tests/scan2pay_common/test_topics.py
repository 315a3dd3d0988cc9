"""scan2pay_common.topics: the v1 MQTT topic tree."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scan2pay_common.errors import InvalidValue
from scan2pay_common.topics import (
    PREFIX,
    TerminalChannel,
    TerminalTopic,
    all_state_topics,
    display_topic,
    events_topic,
    state_topic,
    terminal_events_topic,
)


def test_prefix() -> None:
    assert PREFIX == "scan2pay/v1"


def test_events_topic() -> None:
    assert events_topic("mer_1a2b") == "scan2pay/v1/m/mer_1a2b/events"


def test_display_topic() -> None:
    assert display_topic("mer_1a2b", "till-1") == "scan2pay/v1/m/mer_1a2b/t/till-1/display"


def test_state_topic() -> None:
    assert state_topic("mer_1a2b", "till-1") == "scan2pay/v1/m/mer_1a2b/t/till-1/state"


def test_terminal_events_topic() -> None:
    assert terminal_events_topic("mer_1a2b", "till-1") == "scan2pay/v1/m/mer_1a2b/t/till-1/events"


def test_a_terminal_events_topic_is_not_the_merchant_events_topic() -> None:
    # A subscriber to one must not receive the other's copies by accident.
    assert terminal_events_topic("m1", "t1") != events_topic("m1")
    assert not terminal_events_topic("m1", "t1").startswith(events_topic("m1"))


def test_all_state_topics() -> None:
    assert all_state_topics("mer_1a2b") == "scan2pay/v1/m/mer_1a2b/t/+/state"


def test_terminal_topic_value() -> None:
    topic = TerminalTopic("m.1", "t_2", "display")
    assert topic.value == "scan2pay/v1/m/m.1/t/t_2/display"


@pytest.mark.parametrize("channel", ["display", "state", "events"])
def test_parse_round_trips(channel: TerminalChannel) -> None:
    topic = TerminalTopic("mer_1a2b", "till-1", channel)
    parsed = TerminalTopic.parse(topic.value)
    assert parsed == topic
    assert parsed.merchant_id == "mer_1a2b"
    assert parsed.terminal_id == "till-1"
    assert parsed.channel == channel
    assert parsed.value == topic.value


def test_parse_of_built_topics() -> None:
    assert TerminalTopic.parse(display_topic("M", "T")) == TerminalTopic("M", "T", "display")
    assert TerminalTopic.parse(state_topic("M", "T")) == TerminalTopic("M", "T", "state")
    assert TerminalTopic.parse(terminal_events_topic("M", "T")) == TerminalTopic("M", "T", "events")


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "scan2pay",
        "scan2pay/v1/m/m1/events",
        "scan2pay/v1/m/m1/t/t1",
        "scan2pay/v1/m/m1/t/t1/",
        "scan2pay/v1/m/m1/t/t1/state/",
        "scan2pay/v1/m/m1/t/t1/state/extra",
        "/scan2pay/v1/m/m1/t/t1/state",
        "scan2pay/v2/m/m1/t/t1/state",
        "Scan2pay/v1/m/m1/t/t1/state",
        "other/v1/m/m1/t/t1/state",
        "scan2pay/v1/x/m1/t/t1/state",
        "scan2pay/v1/m/m1/x/t1/state",
        "scan2pay/v1/m/m1/t/t1/State",
        "scan2pay/v1/m/m1/t/t1/Events",
        "scan2pay/v1/m/m1/t/t1/event",
        "scan2pay/v1/m/m1/t/t1/events/",
        "scan2pay/v1/m/m1/t/+/events/x",
        "scan2pay/v1/m/m1/t/t1/+",
        "scan2pay/v1/m/m1/t/t1/#",
        "scan2pay/v1/m/m1/t/#",
        "scan2pay/v1/m/#",
        "#",
    ],
)
def test_parse_rejects_wrong_shapes(topic: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        TerminalTopic.parse(topic)
    assert caught.value.code == "invalid_topic"


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("scan2pay/v1/m/+/t/t1/state", "invalid_merchant_id"),
        ("scan2pay/v1/m/#/t/t1/state", "invalid_merchant_id"),
        ("scan2pay/v1/m//t/t1/state", "invalid_merchant_id"),
        ("scan2pay/v1/m/m 1/t/t1/state", "invalid_merchant_id"),
        ("scan2pay/v1/m/m1/t/+/display", "invalid_terminal_id"),
        ("scan2pay/v1/m/m1/t/+/events", "invalid_terminal_id"),
        ("scan2pay/v1/m/+/t/t1/events", "invalid_merchant_id"),
        ("scan2pay/v1/m/m1/t/#/display", "invalid_terminal_id"),
        ("scan2pay/v1/m/m1/t//display", "invalid_terminal_id"),
        ("scan2pay/v1/m/m1/t/tü/display", "invalid_terminal_id"),
        (f"scan2pay/v1/m/m1/t/{'t' * 65}/display", "invalid_terminal_id"),
    ],
)
def test_parse_rejects_wildcards_and_bad_ids(topic: str, code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        TerminalTopic.parse(topic)
    assert caught.value.code == code


@pytest.mark.parametrize("merchant_id", ["+", "#", "a/b", "", "m 1"])
def test_builders_reject_bad_merchant_ids(merchant_id: str) -> None:
    builds: list[Callable[[], str]] = [
        lambda: events_topic(merchant_id),
        lambda: display_topic(merchant_id, "t1"),
        lambda: state_topic(merchant_id, "t1"),
        lambda: terminal_events_topic(merchant_id, "t1"),
        lambda: all_state_topics(merchant_id),
    ]
    for build in builds:
        with pytest.raises(InvalidValue) as caught:
            build()
        assert caught.value.code == "invalid_merchant_id"


@pytest.mark.parametrize("terminal_id", ["+", "#", "a/b", "", "t 1"])
def test_builders_reject_bad_terminal_ids(terminal_id: str) -> None:
    builds: list[Callable[[], str]] = [
        lambda: display_topic("m1", terminal_id),
        lambda: state_topic("m1", terminal_id),
        lambda: terminal_events_topic("m1", terminal_id),
    ]
    for build in builds:
        with pytest.raises(InvalidValue) as caught:
            build()
        assert caught.value.code == "invalid_terminal_id"


def test_terminal_topic_rejects_unknown_channel() -> None:
    with pytest.raises(InvalidValue) as caught:
        TerminalTopic("m1", "t1", "payments")  # type: ignore[arg-type]  # the wrong channel on purpose
    assert caught.value.code == "invalid_topic"
