"""What is believed of a request behind a reverse proxy
(psp_server/api/guards/forwarded.py), table by table: IPv4, IPv6, both
header kinds, chains of proxies, and malformed or hostile headers."""

from __future__ import annotations

import pytest

from psp_server.api.guards.forwarded import MAX_HOPS, Believed, believe, parse_address
from psp_server.runtime.config import parse_networks

TRUSTED = parse_networks("10.0.0.0/8,2001:db8:ffff::/48")
PROXY = "10.0.0.1"
PROXY6 = "2001:db8:ffff::1"
CLIENT = "203.0.113.7"
CLIENT6 = "2001:db8:1::7"
PAY = "pay.example"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:4711", "192.0.2.1"),
        ('"192.0.2.1:4711"', "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ('"[2001:db8::1]:4711"', "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::A", "2001:db8::a"),
    ],
)
def test_addresses_are_read_in_every_usual_form(text: str, address: str) -> None:
    assert str(parse_address(text)) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "_hidden",
        "192.0.2",
        "192.0.2.256",
        "192.0.2.1:port",
        "[2001:db8::1",
        "[2001:db8::1]:x",
        "[192.0.2.1]x",
        "2001:db8::g",
        "1.2.3.4\r\nX: y",
        "1.2.3.4 5.6.7.8",
    ],
)
def test_anything_else_is_no_address(text: str) -> None:
    assert parse_address(text) is None


def case(
    peer: str | None, headers: dict[str, str], client: str | None, scheme: str | None = None,
    host: str | None = None,
) -> tuple[str | None, dict[str, str], Believed]:  # fmt: skip
    return peer, headers, Believed(client, scheme, host)


XFF = "x-forwarded-for"
PROTO = "x-forwarded-proto"
HOST = "x-forwarded-host"


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # Headers from an untrusted peer are ignored, every one of them.
        case(CLIENT, {XFF: "198.51.100.1", PROTO: "https", HOST: "evil.example"}, CLIENT),
        case(CLIENT, {"forwarded": "for=198.51.100.1;proto=https"}, CLIENT),
        case(CLIENT6, {XFF: "198.51.100.1"}, CLIENT6),
        case("10.0.0.1.5", {XFF: "198.51.100.1"}, "10.0.0.1.5"),
        case(None, {XFF: "198.51.100.1"}, None),
        # One trusted proxy: the address it heard from, its scheme and host.
        case(PROXY, {XFF: CLIENT, PROTO: "https", HOST: "pay.example"}, CLIENT, "https", PAY),
        case(PROXY6, {XFF: CLIENT6, PROTO: "HTTPS"}, CLIENT6, "https"),
        case(PROXY, {XFF: f" {CLIENT6} "}, CLIENT6),
        case(f"::ffff:{PROXY}", {XFF: CLIENT}, CLIENT),
        # What the client wrote itself, left of the proxy's entry, is not read.
        case(PROXY, {XFF: f"198.51.100.1, 192.0.2.9, {CLIENT}"}, CLIENT),
        case(PROXY, {XFF: f"garbage, {CLIENT}"}, CLIENT),
        # A chain of trusted proxies is walked to the first untrusted hop.
        case(PROXY, {XFF: f"198.51.100.1, {CLIENT}, 10.9.9.9, {PROXY6}"}, CLIENT),
        # Each proxy's scheme and host, aligned from the right: the
        # outermost trusted proxy's are the client's.
        case(
            PROXY,
            {XFF: f"{CLIENT}, 10.9.9.9", PROTO: "https, http", HOST: "pay.example, inner"},
            CLIENT,
            "https",
            "pay.example",
        ),
        # Every hop trusted: the leftmost is the client.
        case(PROXY, {XFF: "10.1.1.1, 10.2.2.2"}, "10.1.1.1"),
        # A malformed hop stops the walk at the last trusted one.
        case(PROXY, {XFF: f"{CLIENT}, unknown"}, PROXY),
        case(PROXY, {XFF: f"{CLIENT}, nonsense, 10.9.9.9"}, "10.9.9.9"),
        case(PROXY, {XFF: ""}, PROXY),
        case(PROXY, {XFF: ",".join([CLIENT] * (MAX_HOPS + 1))}, PROXY),
        # A scheme or host that is not one is not believed; the client is.
        case(PROXY, {XFF: CLIENT, PROTO: "javascript", HOST: "a b"}, CLIENT),
        case(PROXY, {XFF: CLIENT, HOST: "x" * 300}, CLIENT),
        case(PROXY, {XFF: CLIENT, HOST: "pay.example:443"}, CLIENT, None, "pay.example:443"),
        case(PROXY, {XFF: CLIENT, HOST: "[2001:db8::1]:8443"}, CLIENT, None, "[2001:db8::1]:8443"),
        # A trusted proxy that names no client is the client; its scheme counts.
        case(PROXY, {PROTO: "https"}, PROXY, "https"),
        case(PROXY, {}, PROXY),
        # RFC 7239, when there is no X-Forwarded-For.
        case(
            PROXY,
            {"forwarded": f'for="[{CLIENT6}]:4711";proto=https;host={PAY}'},
            CLIENT6,
            "https",
            PAY,
        ),
        case(PROXY, {"forwarded": f"for=198.51.100.1, For={CLIENT};Proto=http"}, CLIENT, "http"),
        case(PROXY, {"forwarded": f"for={CLIENT}, for=10.9.9.9;proto=http"}, CLIENT),
        case(PROXY, {"forwarded": "for=_hidden"}, PROXY),
        case(PROXY, {"forwarded": "proto=https"}, PROXY),
        case(PROXY, {"forwarded": ";;;=,=;"}, PROXY),
        # X-Forwarded-For wins over Forwarded: the proxy appends one of them.
        case(PROXY, {XFF: CLIENT, "forwarded": "for=198.51.100.1"}, CLIENT),
    ],
)
def test_what_is_believed(peer: str | None, headers: dict[str, str], expected: Believed) -> None:
    assert believe(peer, headers, TRUSTED) == expected


def test_nothing_is_believed_without_trusted_proxies() -> None:
    headers = {XFF: CLIENT, PROTO: "https", HOST: "pay.example"}
    assert believe(PROXY, headers, ()) == Believed(PROXY)


def test_a_believed_value_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="scheme"):
        Believed(CLIENT, "ftp")
    with pytest.raises(ValueError, match="host"):
        Believed(CLIENT, None, "a/b")
