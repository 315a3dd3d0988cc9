"""The census's count without I/O: each terminal counted once whatever it
repeats, a state off the contract changes nothing, a cleared one removes
the terminal."""

from __future__ import annotations

from psp_server.mqtt.census import OnlineCount
from scan2pay_common.messages import TerminalState
from scan2pay_common.topics import state_topic

ON = TerminalState(online=True, screen="idle", checkout_id=None, displayed_at=None).to_json()
OFF = TerminalState(online=False, screen="offline", checkout_id=None, displayed_at=None).to_json()


def test_each_terminal_counts_once_and_follows_its_last_state() -> None:
    count = OnlineCount()
    a, b = state_topic("mer_a", "t1"), state_topic("mer_b", "t1")
    for topic, payload in ((a, ON), (a, ON), (b, ON), (b, b"{not json"), (b, OFF), (b, ON)):
        count.apply(topic, payload)
    assert len(count) == 2
    count.apply(a, OFF)
    assert len(count) == 1
    count.apply(b, b"")  # its retained state cleared
    assert len(count) == 0
    count.apply(a, ON)
    count.clear()  # a new session: the broker sends every state again
    assert len(count) == 0
