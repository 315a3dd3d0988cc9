"""Who the client is behind a reverse proxy: what ``X-Forwarded-For``,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (or RFC 7239's
``Forwarded``) say, believed only when the peer is a trusted proxy.

Pure parsing, without I/O; ``proxy_headers`` (the middleware) applies it.

The client is found by walking the list of addresses from the right: each
hop that is a trusted proxy is skipped, and the first one that is not is
the client. Anything to its left was written by the client itself and is
never read. An entry that is not an address stops the walk at the last
trusted hop, which then counts as the client: its bucket is shared, but
nobody can pick another's. The scheme and host are those of the outermost
trusted proxy's entry, the one that faced the client.

``X-Forwarded-For`` is read when there is one, ``Forwarded`` otherwise: a
proxy appends to one of them, and must drop or overwrite the other
(deploy/psp/nginx.conf clears ``Forwarded``), or a client could write it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from psp_server.runtime.config import Network

Address = IPv4Address | IPv6Address

# Bounds on what is read at all: a header longer than this is a client's
# doing, not a chain of proxies.
MAX_HOPS = 32
MAX_HOST = 255
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Believed:
    """The client's address (None when the peer's is unknown), and the
    scheme and host the client used when a trusted proxy said so."""

    client: str | None
    scheme: str | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        if self.scheme is not None and self.scheme not in _SCHEMES:
            raise ValueError(f"not a scheme: {self.scheme!r}")
        if self.host is not None and not _HOST.fullmatch(self.host):
            raise ValueError("not a host")


@dataclass(frozen=True, slots=True)
class _Hop:
    """One entry of the chain: the address a proxy heard from (None when
    it is not one), and the scheme and host that proxy was reached by."""

    address: Address | None
    scheme: str | None = None
    host: str | None = None


def parse_address(text: str) -> Address | None:
    """``192.0.2.1``, ``2001:db8::1``, ``[2001:db8::1]``, with a port or
    not (``192.0.2.1:4711``, ``[2001:db8::1]:4711``), quoted or not; an
    IPv4-mapped IPv6 address is its IPv4 address. None for anything else
    (``unknown``, an obfuscated ``_hidden``, garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not re.fullmatch(r":[0-9]{1,5}", rest)):
            return None
        text = inside
    elif text.count(":") == 1:  # IPv4 with a port
        text, port = text.split(":", 1)
        if not re.fullmatch(r"[0-9]{1,5}", port):
            return None
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _scheme(text: str | None) -> str | None:
    if text is None:
        return None
    scheme = text.strip().strip('"').lower()
    return scheme if scheme in _SCHEMES else None


def _host(text: str | None) -> str | None:
    if text is None:
        return None
    host = text.strip().strip('"')
    if len(host) > MAX_HOST or not _HOST.fullmatch(host):
        return None
    return host.lower()


def _values(header: str | None) -> list[str] | None:
    """A comma-separated header's entries; None when absent or too long."""
    if header is None:
        return None
    entries = header.split(",")
    return None if len(entries) > MAX_HOPS else entries


def _x_forwarded(forwarded_for: str, proto: str | None, host: str | None) -> list[_Hop] | None:
    addresses = _values(forwarded_for)
    if addresses is None:
        return None
    protos = _values(proto) or []
    hosts = _values(host) or []

    def aligned(values: list[str], index: int) -> str | None:
        # One value: the one proxy that set it. Several: the one written by
        # the proxy that wrote the address at the same place from the right.
        if len(values) == 1:
            return values[0]
        at = len(values) - (len(addresses) - index)
        return values[at] if 0 <= at < len(values) else None

    return [
        _Hop(parse_address(text), _scheme(aligned(protos, i)), _host(aligned(hosts, i)))
        for i, text in enumerate(addresses)
    ]


def _rfc7239(header: str) -> list[_Hop] | None:
    elements = _values(header)
    if elements is None:
        return None
    hops = []
    for element in elements:
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, equals, value = pair.partition("=")
            if equals:
                pairs[name.strip().lower()] = value.strip()
        found = pairs.get("for")
        hops.append(
            _Hop(
                None if found is None else parse_address(found),
                _scheme(pairs.get("proto")),
                _host(pairs.get("host")),
            )
        )
    return hops


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def is_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether ``peer`` (a socket's address as text) is a trusted proxy."""
    address = None if peer is None else parse_address(peer)
    return address is not None and _trusted(address, trusted)


def believe(
    peer: str | None,
    headers: Mapping[str, str],
    trusted: Sequence[Network],
) -> Believed:
    """What to believe of a request from ``peer`` with ``headers`` (their
    names in lower case, repeated headers joined by commas)."""
    address = None if peer is None else parse_address(peer)
    if address is None or not _trusted(address, trusted):
        return Believed(peer)
    forwarded_for = headers.get("x-forwarded-for")
    if forwarded_for is not None:
        hops = _x_forwarded(
            forwarded_for, headers.get("x-forwarded-proto"), headers.get("x-forwarded-host")
        )
    elif "forwarded" in headers:
        hops = _rfc7239(headers["forwarded"])
    else:
        # A trusted proxy that names no client is the client; its word on
        # the scheme and host still counts.
        hops = [
            _Hop(
                address,
                _scheme(headers.get("x-forwarded-proto")),
                _host(headers.get("x-forwarded-host")),
            )
        ]
        return Believed(str(address), hops[0].scheme, hops[0].host)
    if hops is None:
        return Believed(str(address))
    client, last = address, None
    for hop in reversed(hops):
        if hop.address is None:
            break
        client, last = hop.address, hop
        if not _trusted(hop.address, trusted):
            break
    if last is None:
        return Believed(str(client))
    return Believed(str(client), last.scheme, last.host)
