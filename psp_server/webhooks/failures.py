"""What a merchant is told about a failed delivery: its class, never the
error's text.

The text of a connection error names the address and port connected to and
how it failed; the exact status names what answered. Handed to the merchant,
who chooses the URL, they map the hosts and ports the PSP can reach. The
merchant gets one of the classes below, and the operator's log keeps the
detail.
"""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp

from psp_server.webhooks.destinations import BlockedDestination

TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection_refused"
TLS_ERROR = "tls_error"
DNS_ERROR = "dns_error"
BLOCKED_DESTINATION = "blocked_destination"
CONNECTION_FAILED = "connection_failed"
HTTP_3XX = "http_3xx"
HTTP_4XX = "http_4xx"
HTTP_5XX = "http_5xx"
HTTP_OTHER = "http_other"

CLASSES = (
    TIMEOUT,
    CONNECTION_REFUSED,
    TLS_ERROR,
    DNS_ERROR,
    BLOCKED_DESTINATION,
    CONNECTION_FAILED,
    HTTP_3XX,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_OTHER,
)
_HTTP = {3: HTTP_3XX, 4: HTTP_4XX, 5: HTTP_5XX}


def of_status(status: int) -> str | None:
    """None for a 2xx (delivered); else the status's class."""
    if 200 <= status < 300:
        return None
    return _HTTP.get(status // 100, HTTP_OTHER)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the OS errors aiohttp wraps."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        one = todo.pop()
        if one is None or any(one is known for known in seen):
            continue
        seen.append(one)
        todo += [one.__cause__, one.__context__]
        if isinstance(one, aiohttp.ClientConnectorError):
            todo.append(one.os_error)
    return seen


def of_exception(exc: BaseException) -> str:
    """The class of an attempt that got no answer."""
    chain = _chain(exc)

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(one, kinds) for one in chain)

    if has(BlockedDestination):
        return BLOCKED_DESTINATION
    if has(ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError):
        return TLS_ERROR
    if has(TimeoutError):
        return TIMEOUT
    if has(aiohttp.ClientConnectorDNSError, socket.gaierror):
        return DNS_ERROR
    if has(ConnectionRefusedError) or any(
        isinstance(one, OSError) and one.errno == errno.ECONNREFUSED for one in chain
    ):
        return CONNECTION_REFUSED
    return CONNECTION_FAILED


def public(error: str | None, status: int | None) -> str | None:
    """The class shown for a stored outcome. Rows written before the
    classes hold an error's text, or no error beside a failing status."""
    if error in CLASSES:
        return error
    if error is None:
        return None if status is None else of_status(status)
    return TIMEOUT if error.startswith("timeout") else CONNECTION_FAILED
