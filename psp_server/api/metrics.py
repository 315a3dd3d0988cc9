"""``GET /metrics``: the Prometheus text format, on the public port or,
with ``--metrics-port``, on an address of its own (``metrics_app``) and not
on the public port.

The counters and histograms are what this process recorded, or, under
``--workers N``, what every worker recorded (read from the shared folder).
The backlogs (the outbox and the webhooks) are the database's, read at
scrape time: one count over a partial index each, rather than a write on
the payment's path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from psp_server.api.appkeys import CLOCK, METRICS, STORAGE, WEBHOOK_STORE
from psp_server.core.errors import StorageError
from psp_server.core.records import OutboxBacklog

# A scrape whose database does not answer in time leaves the backlogs out
# rather than make Prometheus time out the whole scrape.
BACKLOG_TIMEOUT = 2.0


class _Backlogs(Collector):
    """The database's backlogs as read just before this scrape."""

    def __init__(self, outbox: OutboxBacklog, webhooks: int, now: int) -> None:
        self._outbox = outbox
        self._webhooks = webhooks
        self._now = now

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "scan2pay_outbox_pending",
            "Events written but not yet published by the relay.",
            value=self._outbox.pending,
        )
        yield GaugeMetricFamily(
            "scan2pay_outbox_oldest_pending_age_seconds",
            "Age of the oldest event the relay has yet to publish; 0 when none waits.",
            value=self._outbox.oldest_age(self._now),
        )
        yield GaugeMetricFamily(
            "scan2pay_webhook_pending",
            "Webhook deliveries scheduled for an attempt.",
            value=self._webhooks,
        )


async def _backlogs(app: web.Application) -> bytes:
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT):
            outbox = await app[STORAGE].outbox_backlog()
            webhooks = await app[WEBHOOK_STORE].pending()
    except (StorageError, TimeoutError):
        # Counted as a database error where it failed; the scrape goes on,
        # and the gauges' absence is what an alert on them sees.
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Backlogs(outbox, webhooks, app[CLOCK].now_ms()))
    return generate_latest(registry)


async def exposition(app: web.Application) -> bytes:
    registry = app[METRICS].scrape_registry()
    if registry is None:
        raise web.HTTPNotFound()  # metrics are off; the route is not there either
    backlogs = await _backlogs(app)
    # Under --workers, reading every worker's files is file I/O: off the loop.
    recorded = await asyncio.to_thread(generate_latest, registry)
    return recorded + backlogs


# The text format every Prometheus 2.x reads; the metric names here need
# nothing of the newer one.
_HEADERS = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}


async def get_metrics(request: web.Request) -> web.Response:
    return web.Response(body=await exposition(request.app), headers=_HEADERS)


def metrics_app(main: web.Application) -> web.Application:
    """The metrics port's application: ``main``'s ``GET /metrics`` and
    nothing else, not even the API's middlewares (no client of the public
    port reaches it)."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=await exposition(main), headers=_HEADERS)

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app
