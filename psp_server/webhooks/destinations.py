"""Where webhooks may go: public addresses, and the networks the operator
allows besides (``--webhook-allow-networks``).

A merchant names the URL, so without a check the PSP connects wherever the
merchant says: to its own loopback, to the cloud's metadata service, to the
private network behind it; and the delivery log tells which ports answered.

The check is made twice:

- At registration, on the URL's host when it is an address written out, in
  any of its forms, or a name that is loopback by definition
  (``localhost``): the merchant learns at once. A name is not resolved
  then: what it resolves to at registration says nothing about later.
- On every connection, on the address connected to. The resolver drops the
  addresses a name resolves to that are not allowed (a name that was public
  at registration may resolve to 127.0.0.1 now: DNS rebinding), and the
  socket factory refuses to make a socket for one: aiohttp connects to an
  address written in the URL without asking the resolver, and the socket
  factory sees every address, just before it is connected to. A refused
  address never gets a packet.

The special ranges are IANA's IPv4 and IPv6 special-purpose registries, with
multicast, the ranges reserved for future use and the one cloud metadata
address that is not in them (Azure's). ``ipaddress`` parses (strictly, in
every form); the ranges are listed here rather than taken from its
``is_global``, which calls 224.0.0.1 (multicast), 64:ff9b::7f00:1 (NAT64 of
loopback) and 2002:7f00:1:: (6to4 of loopback) global, and whose answers
changed between patch releases of Python (CVE-2024-4032).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# (network, what it is), the first match wins.
_SPECIAL_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared, carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local, where cloud metadata services are"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved, 6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
        ("168.63.129.16/32", "cloud metadata"),
    )
)
_SPECIAL_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible, deprecated"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001::/23", "IETF protocol assignment"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local, private"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local, deprecated"),
        ("ff00::/8", "multicast"),
    )
)
# Global unicast: IPv6 outside it, and not above, is reserved.
_GLOBAL_UNICAST = IPv6Network("2000::/3")
# IPv6 forms that carry an IPv4 address, which is where they lead.
_NAT64 = IPv6Network("64:ff9b::/96")

_LOCALHOST = ("127.0.0.1", "::1")
# The host of a URL is an IPv4 address when its last label is a number
# (WHATWG URL): 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 all are.
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_NAME = re.compile(r"[a-z0-9_.-]+")


class BlockedDestination(OSError):
    """A connection the policy refused before any packet was sent."""

    def __init__(self, address: str, kind: str) -> None:
        super().__init__(f"{address} is not a public address ({kind})")
        self.strerror = self.args[0]  # what aiohttp's connection errors quote
        self.address = address
        self.kind = kind


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Public addresses, and those in ``allowed`` (the operator's choice)."""

    allowed: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """None if webhooks may connect to ``address``; else what kind of
        address it is, like ``loopback``."""
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # the kernel connects to the IPv4 address
        for network in self.allowed:
            if network.version == address.version and address in network:
                return None
        if isinstance(address, IPv4Address):
            return next((kind for net, kind in _SPECIAL_V4 if address in net), None)
        embedded: IPv4Address | None = None
        if address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            embedded = address.sixtofour
        if embedded is not None:
            inner = self.refusal(embedded)
            return None if inner is None else f"{inner}, in an IPv6 form"
        for net, kind in _SPECIAL_V6:
            if address in net:
                return kind
        return None if address in _GLOBAL_UNICAST else "reserved"

    def refusal_of(self, text: str) -> str | None:
        """:meth:`refusal` of an address in text, as a resolver or a socket
        address gives it; anything that is not an address is refused."""
        try:
            address = ip_address(text)
        except ValueError:
            return "not an IP address"
        return self.refusal(address)

    def check_host(self, host: str) -> str | None:
        """Why a webhook URL's host (``urlsplit(url).hostname``: lower case,
        an IPv6 address without its brackets) is refused at registration, or
        None. Names other than ``localhost`` pass: they are checked on every
        connection, after they are resolved."""
        if ":" in host:
            if "%" in host:
                return "url must not name an IPv6 zone (%...)"
            try:
                address: Address = IPv6Address(host)
            except ValueError:
                return f"url's host [{host}] is not an IPv6 address"
            return self._refused(f"[{host}]", self.refusal(address))
        if not _NAME.fullmatch(host):
            return (
                "url's host may hold only letters, digits, '-', '_' and '.',"
                " or be an IPv6 address in brackets"
            )
        labels = host.split(".")
        last = labels[-2] if labels[-1] == "" and len(labels) > 1 else labels[-1]
        if _NUMBER.fullmatch(last):
            if not _DOTTED_QUAD.fullmatch(host):
                return (
                    f"url's host {host} is an IPv4 address in another form than four"
                    " decimal numbers; write it like 192.0.2.10"
                )
            return self._refused(host, self.refusal(IPv4Address(host)))
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            kinds = [self.refusal_of(address) for address in _LOCALHOST]
            if all(kinds):
                return self._refused(host, "loopback")
        return None

    @staticmethod
    def _refused(host: str, kind: str | None) -> str | None:
        if kind is None:
            return None
        return (
            f"url's host {host} is not a public address ({kind}); webhooks go only to"
            " public addresses unless the PSP's operator allows others"
        )


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` (aiohttp's default resolver when None) and
    keeps only the addresses the policy allows; raises
    :class:`BlockedDestination` when it allows none of them."""

    def __init__(self, policy: DestinationPolicy, inner: AbstractResolver | None = None) -> None:
        from aiohttp.resolver import DefaultResolver

        self._policy = policy
        self._owns_inner = inner is None
        self._inner = DefaultResolver() if inner is None else inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        blocked: BlockedDestination | None = None
        for result in found:
            kind = self._policy.refusal_of(result["host"])
            if kind is None:
                allowed.append(result)
            elif blocked is None:
                blocked = BlockedDestination(result["host"], kind)
        if blocked is not None and not allowed:
            raise blocked
        if not allowed:  # aiohttp expects an error, not an empty answer
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: no address")
        return allowed

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


def guarded_socket_factory(
    policy: DestinationPolicy,
) -> Callable[[tuple[Any, ...]], socket.socket]:
    """An aiohttp ``socket_factory``: a socket for an address the policy
    allows; :class:`BlockedDestination` for any other, before a socket exists."""

    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, address = addr_info
        kind = policy.refusal_of(str(address[0]))
        if kind is not None:
            raise BlockedDestination(str(address[0]), kind)
        return socket.socket(family, type_, proto)

    return make
