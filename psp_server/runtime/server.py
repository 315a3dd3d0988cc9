"""Starting and stopping the HTTP server on a socket bound before the app is
built, so that port 0 works and the public URL can name the real port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace

from aiohttp import web
from aiohttp.abc import AbstractResolver

from psp_server.api.app import make_app
from psp_server.api.appkeys import DEADLINES
from psp_server.api.guards.access_log import JsonAccessLogger
from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.header_deadline import GuardedSockSite
from psp_server.api.metrics import metrics_app
from psp_server.core.errors import PSPError
from psp_server.runtime import config
from psp_server.storage import Storage
from scan2pay_common.clock import SYSTEM_CLOCK, Clock


@dataclass
class RunningServer:
    runner: web.AppRunner
    app: web.Application
    settings: config.Settings
    url: str
    # GET /metrics on its own address (--metrics-port), when it has one.
    metrics_runner: web.AppRunner | None = None
    metrics_url: str | None = None

    async def stop(self) -> None:
        if self.metrics_runner is not None:
            with contextlib.suppress(Exception):
                await self.metrics_runner.cleanup()
        with contextlib.suppress(Exception):
            await self.runner.cleanup()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PSPError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def listen(settings: config.Settings) -> tuple[socket.socket, config.Settings]:
    """The server's socket, bound, and the settings with the port it got
    (port 0 picks a free one) and the public URL derived from it."""
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    settings = replace(settings, port=port)
    if settings.public_url is None:
        settings = config.with_default_public_url(settings, port)
    return sock, settings


def listen_metrics(settings: config.Settings) -> tuple[socket.socket | None, config.Settings]:
    """The metrics port's socket, bound, and the settings with the port it
    got; None when metrics are served on the public port or not at all."""
    if not settings.metrics or settings.metrics_port is None:
        return None, settings
    sock = _bind(settings.metrics_host, settings.metrics_port)
    return sock, replace(settings, metrics_port=sock.getsockname()[1])


def local_url(settings: config.Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def metrics_url(settings: config.Settings) -> str | None:
    """Where Prometheus scrapes: the metrics port, or the public one."""
    if not settings.metrics:
        return None
    if settings.metrics_port is None:
        return local_url(settings) + "/metrics"
    host = settings.metrics_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.metrics_port}/metrics"


async def start_server(
    settings: config.Settings,
    *,
    storage: Storage | None = None,
    sock: socket.socket | None = None,
    metrics_sock: socket.socket | None = None,
    routes: Callable[[web.Application], None] | None = None,
    webhook_resolver: AbstractResolver | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rate_buckets: BucketTable | None = None,
) -> RunningServer:
    """Serves on ``sock`` when given (a worker of ``serve --workers N``, on
    the socket its supervisor bound, with the settings ``listen`` returned),
    else on a socket of its own; ``metrics_sock`` likewise for the metrics
    port (``listen_metrics``). ``routes`` adds to the app, and
    ``webhook_resolver`` resolves webhook endpoints' names, ``clock`` is
    the app's now and ``rate_buckets`` the rate limits' table that a
    worker shares with the others (see make_app)."""
    if sock is None:
        sock, settings = listen(settings)
    if metrics_sock is None:
        metrics_sock, settings = listen_metrics(settings)
    app = make_app(
        settings,
        storage=storage,
        routes=routes,
        webhook_resolver=webhook_resolver,
        clock=clock,
        rate_buckets=rate_buckets,
    )
    runner = web.AppRunner(app, access_log_class=JsonAccessLogger)
    await runner.setup()
    await GuardedSockSite(runner, sock, app[DEADLINES]).start()
    server = RunningServer(runner, app, settings, local_url(settings))
    if metrics_sock is not None:
        server.metrics_runner = web.AppRunner(metrics_app(app), access_log=None)
        await server.metrics_runner.setup()
        await web.SockSite(server.metrics_runner, metrics_sock).start()
        server.metrics_url = metrics_url(settings)
    return server
