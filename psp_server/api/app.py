"""The aiohttp application: its resources live and die with it (cleanup_ctx),
and its state is typed (web.AppKey)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver

from psp_server.api import routes as api_routes
from psp_server.api.appkeys import (
    BACKEND,
    CENSUS,
    CLOCK,
    DEADLINES,
    METRICS,
    PARTITION_LEASES,
    PRESENCE,
    RATE_BUCKETS,
    RELAY,
    RELAY_WAKE,
    SETTINGS,
    STORAGE,
    WEBHOOK_DESTINATIONS,
    WEBHOOK_DISPATCHER,
    WEBHOOK_RESOLVER,
    WEBHOOK_STORE,
)
from psp_server.api.client_errors import clients_log
from psp_server.api.envelope import error_response
from psp_server.api.guards import abuse
from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.header_deadline import HeaderDeadlines, clear_header_deadline
from psp_server.api.guards.request_context import request_context
from psp_server.api.guards.request_metrics import request_metrics
from psp_server.api.metrics import get_metrics
from psp_server.core.errors import APIError, StorageUnavailable
from psp_server.metrics import NO_METRICS, PrometheusMetrics
from psp_server.mqtt.census import Census
from psp_server.mqtt.presence import Presence
from psp_server.outbox.relay import OutboxRelay
from psp_server.outbox.sweeper import sweep_forever
from psp_server.outbox.wake import WakeEvent
from psp_server.pairing import api as pairing_api
from psp_server.runtime.config import Settings, with_default_public_url
from psp_server.storage import Storage, choose
from psp_server.storage.sql_storage import SqlStorage
from psp_server.web import routes as web_routes
from psp_server.webhooks import routes as webhook_routes
from psp_server.webhooks.destinations import DestinationPolicy
from psp_server.webhooks.dispatcher import WebhookDispatcher
from psp_server.webhooks.retry import RetryPolicy
from psp_server.webhooks.store import WebhookStore
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.logtext import loggable

log = logging.getLogger(__name__)


MAX_BODY = 16 * 1024

_INVITE_BEARER = {"WWW-Authenticate": "Bearer"}

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except APIError as exc:
        extra = _INVITE_BEARER if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers=extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, exc.reason, headers=headers)
    except StorageUnavailable:
        # Logged once per outage by the storage, not once per request.
        return error_response(
            503,
            "storage_unavailable",
            "the database is unavailable; try again shortly "
            "(a retry with the same Idempotency-Key is safe)",
            headers={"Retry-After": "1"},
        )
    except ConnectionError as exc:
        # The client hung up (mid-body, say): nobody will read an answer,
        # and it is no bug of ours.
        clients_log.info("client went away during %s: %s", loggable(request.path), exc)
        return error_response(400, "client_gone", "the connection was closed mid-request")
    except Exception:
        log.exception("unhandled error in %s %s", loggable(request.method), loggable(request.path))
        return error_response(500, "internal_error", "internal error; the request was logged")


# How often each process samples what it alone knows (its relay's link to
# the broker, the census) into its gauges.
SAMPLE_INTERVAL = 1.0


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    if STORAGE not in app:
        app[STORAGE] = await asyncio.to_thread(app[BACKEND].open_storage, app[CLOCK])
    storage = app[STORAGE]
    if isinstance(storage, SqlStorage):
        storage.worker.availability.on_failure = app[METRICS].db_error
    yield
    await app[STORAGE].close()


async def _partitions_ctx(app: web.Application) -> AsyncIterator[None]:
    app[PARTITION_LEASES] = app[BACKEND].partitions()
    yield
    await app[PARTITION_LEASES].close()


async def _background_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's background loops, each named, in one TaskGroup that lives
    as long as the app: at shutdown each is cancelled, and the group ends
    once all of them have. After the webhooks' context, whose dispatcher
    it runs, so that the dispatcher stops before that context lets go of
    the wake-up."""
    settings = app[SETTINGS]
    tasks: list[asyncio.Task[None]] = []
    async with asyncio.TaskGroup() as group:

        def start(name: str, loop: Coroutine[Any, Any, None]) -> None:
            tasks.append(group.create_task(_alone(name, loop), name=name))

        start(
            "expiry-sweeper",
            sweep_forever(
                app[STORAGE],
                app[RELAY_WAKE],
                settings.sweep_interval,
                app[CLOCK],
                app[METRICS],
            ),
        )
        partitions = app[PARTITION_LEASES]
        other_writers = app[BACKEND].wake_source(app[RELAY_WAKE])
        if other_writers is not None:
            # Other processes write events too; their commits wake this one.
            start("event-notifications", other_writers)
        if settings.mqtt is not None:
            relay = OutboxRelay(
                app[STORAGE], settings.mqtt, app[RELAY_WAKE], partitions, clock=app[CLOCK]
            )
            app[RELAY] = relay
            start("outbox-relay", relay.run())
            app[PRESENCE] = presence = Presence(settings.mqtt, app[CLOCK])
            start("terminal-presence", presence.run())
            if app[METRICS].enabled:
                app[CENSUS] = census = Census(settings.mqtt)
                start("terminal-census", census.run())
        start("webhook-dispatcher", app[WEBHOOK_DISPATCHER].run())
        if app[METRICS].enabled:
            start("metrics-sampler", _sample_forever(app))
        yield
        for task in tasks:
            task.cancel()


async def _sample_forever(app: web.Application) -> None:
    """This process's own gauges: whether its relay is connected, and the
    census's count (each worker writes its own; a scrape combines them)."""
    metrics = app[METRICS]
    while True:
        relay = app.get(RELAY)
        census = app.get(CENSUS)
        metrics.sample(
            mqtt_connected=None if relay is None else relay.connected,
            terminals_online=None if census is None else census.online,
        )
        await asyncio.sleep(SAMPLE_INTERVAL)


async def _alone(name: str, loop: Coroutine[Any, Any, None]) -> None:
    """Runs one background loop so that its failure stays its own, as it
    was when each loop was a bare task: each loop already survives its own
    errors (the database or the broker away) and backs off. One that ends
    with an error anyway is logged at once and ends alone. Let through, the
    error would make the TaskGroup cancel every other loop and the task
    that started the app, so that a fault in, say, terminal presence would
    stop the outbox relay, the webhooks and the server."""
    try:
        await loop
    except Exception:
        log.exception("background task %s stopped; the others go on", name)


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[WEBHOOK_STORE] = store = WebhookStore.of(app[STORAGE])
    policy = RetryPolicy(
        base=settings.webhook_retry_base,
        maximum=settings.webhook_retry_max,
        window=settings.webhook_retry_window,
    )
    if settings.webhook_allow_networks:
        log.info(
            "webhooks may go to public addresses and to %s",
            ", ".join(str(network) for network in settings.webhook_allow_networks),
        )
    dispatcher = WebhookDispatcher(
        store,
        policy,
        timeout=settings.webhook_timeout,
        clock=app[CLOCK],
        partitions=app[PARTITION_LEASES],
        destinations=app[WEBHOOK_DESTINATIONS],
        resolver=app.get(WEBHOOK_RESOLVER),
        metrics=app[METRICS],
    )
    app[WEBHOOK_DISPATCHER] = dispatcher
    wake = app[RELAY_WAKE]
    wake.add_listener(dispatcher.wake_event)
    yield
    wake.remove_listener(dispatcher.wake_event)


def make_app(
    settings: Settings,
    *,
    storage: Storage | None = None,
    routes: Callable[[web.Application], None] | None = None,
    webhook_resolver: AbstractResolver | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rate_buckets: BucketTable | None = None,
) -> web.Application:
    """``routes``, when given, adds to the app last (``scan2pay demo``'s pages).
    ``webhook_resolver`` resolves the names of webhook endpoints instead of
    the system's resolver; the destination policy still checks every address
    it gives (tests use it to make a name resolve where they want). ``clock``
    is the app's now (``CLOCK``): tests hand in one they move. ``rate_buckets``
    is the table of the rate limits' buckets that the workers of ``--workers
    N`` share; without one the app has its own."""
    if settings.public_url is None:
        settings = with_default_public_url(settings, settings.port)
    deadlines = HeaderDeadlines(settings.header_timeout)
    metrics = (
        PrometheusMetrics.for_this_process(broker=settings.mqtt is not None)
        if settings.metrics
        else NO_METRICS
    )
    counted = [request_metrics] if metrics.enabled else []
    app = web.Application(
        middlewares=[
            request_context(settings.trusted_proxies),
            clear_header_deadline(deadlines),
            *counted,
            *abuse.middlewares(),
            json_errors,
        ],
        client_max_size=MAX_BODY,
    )
    app[DEADLINES] = deadlines
    app[METRICS] = metrics
    app[SETTINGS] = settings
    app[BACKEND] = choose(settings.db)  # the one place the database is told apart
    app[CLOCK] = clock
    app[RATE_BUCKETS] = BucketTable.in_process() if rate_buckets is None else rate_buckets
    app[WEBHOOK_DESTINATIONS] = DestinationPolicy(settings.webhook_allow_networks)
    if webhook_resolver is not None:
        app[WEBHOOK_RESOLVER] = webhook_resolver
    app[RELAY_WAKE] = WakeEvent()
    if storage is not None:
        app[STORAGE] = storage
    app.cleanup_ctx.append(_storage_ctx)
    app.cleanup_ctx.append(_partitions_ctx)  # before the relay and the dispatcher, which use it
    app.cleanup_ctx.append(_webhooks_ctx)
    app.cleanup_ctx.append(_background_ctx)
    api_routes.add_routes(app)
    pairing_api.add_routes(app)
    webhook_routes.add_routes(app)
    web_routes.add_routes(app)
    if metrics.enabled and settings.metrics_port is None:
        # Else only on the metrics port (runtime/server.py), not public.
        app.router.add_get("/metrics", get_metrics)
    if routes is not None:
        routes(app)
    return app
