"""``GET /readyz``: whether this process should be sent traffic. Ready
when the database answers, its schema has every migration this version
ships, and, with a broker, the relay's oldest unpublished event is younger
than ``ready_relay_lag``. ``/healthz`` stays liveness: a process that is not
ready is still alive, and restarting it would not bring the database back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from psp_server.api.appkeys import CLOCK, SETTINGS, STORAGE
from psp_server.api.http import json_response
from psp_server.core.errors import StorageError, StorageUnavailable
from psp_server.core.records import OutboxBacklog
from psp_server.storage.schema_migrate import known_migrations

# A database that takes longer than this to answer two reads is not ready.
CHECK_TIMEOUT = 2.0
_SHIPPED = known_migrations()


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


def judge(
    *,
    applied: set[str] | None,
    backlog: OutboxBacklog | None,
    now: int,
    relay_lag: float | None,
    database_error: str = "",
) -> list[Reason]:
    """Why the PSP is not ready; nothing when it is. ``applied`` and
    ``backlog`` are None when the database did not answer; ``relay_lag``
    is None without a relay (no broker: events wait by design)."""
    if applied is None or backlog is None:
        return [Reason("database_unavailable", f"the database does not answer: {database_error}")]
    reasons = []
    missing = sorted(_SHIPPED - applied)
    if missing:
        reasons.append(
            Reason(
                "schema_outdated",
                f"{len(missing)} migration(s) not applied, up to {missing[-1]}:"
                " run psp-server migrate",
            )
        )
    age = backlog.oldest_age(now)
    if relay_lag is not None and age > relay_lag:
        reasons.append(
            Reason(
                "relay_lagging",
                f"the oldest unpublished event is {age:.1f} s old (the limit is {relay_lag:g} s)",
            )
        )
    return reasons


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    storage = app[STORAGE]
    applied: set[str] | None = None
    backlog: OutboxBacklog | None = None
    error = ""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            applied = await storage.applied_migrations()
            backlog = await storage.outbox_backlog()
    except TimeoutError:
        error = f"no answer within {CHECK_TIMEOUT:g} s"
    except StorageUnavailable:
        error = "it is unreachable (the server's log says why)"
    except StorageError:
        # Not the storage's words: they name the database's host, which
        # whoever may ask /readyz need not learn.
        error = "a read failed (the server's log says why)"
    now = app[CLOCK].now_ms()
    relay_lag = None if settings.mqtt is None else settings.ready_relay_lag
    reasons = judge(
        applied=applied, backlog=backlog, now=now, relay_lag=relay_lag, database_error=error
    )
    body: dict[str, Any] = {
        "status": "not_ready" if reasons else "ready",
        "reasons": [{"code": reason.code, "message": reason.message} for reason in reasons],
    }
    if backlog is not None:
        body["outbox"] = {
            "pending": backlog.pending,
            "oldest_pending_age_seconds": round(backlog.oldest_age(now), 3),
        }
    return json_response(body, status=503 if reasons else 200)
