"""A resolver whose answers the test sets, for the PSP's webhook dispatcher
(``start_psp(..., webhook_resolver=...)``): a name can resolve to a public
address now and to 127.0.0.1 a moment later, as a rebinding attacker's DNS
server makes it, without a DNS server or the hosts file. It only answers:
the PSP's own resolver wraps it and checks every address it gives."""

from __future__ import annotations

import socket
from ipaddress import ip_address

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names: dict[str, list[str]] = dict(names or {})
        self.asked: list[str] = []  # every name resolved, in order

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: no such name (tests/support/dns.py)")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in self.names[host]
        ]

    async def close(self) -> None:
        pass
