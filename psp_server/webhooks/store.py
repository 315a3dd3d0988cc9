"""Webhook endpoints and their delivery log, in the PSP's database.

Every statement runs through the storage's worker, in its transactions, so
a 201 or 202 means the row is committed and the dispatcher's bookkeeping
never races the API's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from psp_server.core import credentials
from psp_server.core.errors import StorageError
from psp_server.storage import Storage
from psp_server.storage.dbapi import Connection, Dialect, Worker
from psp_server.storage.partitions import PARTITIONS
from psp_server.webhooks import signing
from psp_server.webhooks.retry import RetryPolicy

# A merchant may have this many enabled endpoints at once.
MAX_ENABLED_ENDPOINTS = 16
# Events turned into deliveries per endpoint per scan; the rest next scan.
DISCOVER_BATCH = 500
ERROR_MAX = 300


class WebhookRefusal(Enum):
    """Why a webhook request is refused: its ``code``, the HTTP ``status``
    and the ``message``, named once (as the checkout's ``Refusal`` is). Not
    a StrEnum: two refusals share the code ``not_found`` with messages of
    their own."""

    NO_WEBHOOK = ("not_found", 404, "no such webhook")
    NO_DELIVERY = ("not_found", 404, "this webhook has no delivery of this event")
    DISABLED = ("webhook_disabled", 409, "this webhook is disabled")
    TOO_MANY = (
        "too_many_webhooks",
        409,
        f"a merchant may have at most {MAX_ENABLED_ENDPOINTS} enabled webhooks",
    )

    @property
    def code(self) -> str:
        return str(self.value[0])

    @property
    def status(self) -> int:
        return int(self.value[1])

    @property
    def message(self) -> str:
        return str(self.value[2])


class WebhookRefused(Exception):
    def __init__(self, refusal: WebhookRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    enabled: bool
    created_at: int
    disabled_at: int | None


_ENDPOINT_COLUMNS = "id, merchant_id, url, enabled, created_at, disabled_at"


def _endpoint(row: Any) -> Endpoint:
    id_, merchant_id, url, enabled, created_at, disabled_at = row
    return Endpoint(id_, merchant_id, url, bool(enabled), created_at, disabled_at)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A row of the delivery log."""

    event_id: str
    seq: int
    type: str
    status: str
    attempts: int
    first_attempt_at: int | None
    last_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: int | None
    delivered_at: int | None
    created_at: int


_DELIVERY_COLUMNS = (
    "event_id, seq, type, status, attempts, first_attempt_at, last_attempt_at,"
    " last_status_code, last_error, next_attempt_at, delivered_at, created_at"
)


def _delivery(row: Any) -> Delivery:
    return Delivery(*row)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery to attempt now, with what the attempt needs."""

    endpoint_id: str
    event_position: int
    event_id: str
    url: str
    secret: str = field(repr=False)
    payload: bytes = field(repr=False)
    # next_attempt_at as it was read: if it differs when the outcome is
    # recorded, a redelivery was queued meanwhile and stays queued.
    scheduled_at: int


@dataclass(frozen=True, slots=True)
class Outcome:
    started_at: int
    finished_at: int
    status_code: int | None
    # A class of psp_server/webhooks/failures.py, what the merchant sees;
    # None once delivered.
    error: str | None
    # What happened, for the operator's log; never stored or shown.
    detail: str = field(default="", repr=False)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Scan:
    due_endpoints: list[str]  # endpoints with deliveries due now, most overdue first
    next_due_at: int | None  # the earliest attempt scheduled after now
    more: bool  # events are left to turn into deliveries: scan again at once


# Enabled endpoints whose merchant has events they have not seen.
_ENDPOINTS_BEHIND = (
    "SELECT e.id, e.merchant_id, e.last_seq FROM webhook_endpoints e"
    " JOIN merchants m ON m.id = e.merchant_id"
    " WHERE e.enabled = 1 AND e.last_seq < m.last_event_seq"
)
_DUE_ENDPOINTS = (
    " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    " WHERE d.next_attempt_at <= ? AND e.enabled = 1"
)
_MOST_OVERDUE_FIRST = " GROUP BY d.endpoint_id ORDER BY MIN(d.next_attempt_at)"
_DUE_DELIVERIES = (
    "SELECT d.event_position, d.event_id, e.url, e.secret, ev.payload, d.next_attempt_at"
    " FROM webhook_deliveries d"
    " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    " JOIN events ev ON ev.position = d.event_position"
    " WHERE d.endpoint_id = ? AND d.next_attempt_at <= ? AND e.enabled = 1"
)
_OLDEST_SCHEDULE_FIRST = " ORDER BY d.next_attempt_at, d.event_position LIMIT ?"
# With partitions given, the endpoints (e) of merchants in them are served,
# by the dialect's ``in_partitions``, as the relay's events are
# (SqlStorage.unpublished_events), so that one process serves both for a
# merchant.


def worker_of(storage: Storage) -> tuple[Worker, Dialect]:
    """The storage's worker, which webhooks share, and its dialect."""
    from psp_server.storage.sql_storage import SqlStorage

    if not isinstance(storage, SqlStorage):
        raise StorageError("webhooks need an SQL storage")
    return storage.worker, storage.dialect


def _last_event_seq(conn: Connection, merchant_id: str) -> int:
    seq: int = conn.execute(
        "SELECT last_event_seq FROM merchants WHERE id = ?", (merchant_id,)
    ).fetchone()[0]
    return seq


def _discover(
    conn: Connection, endpoint_id: str, merchant_id: str, last_seq: int, now: int
) -> bool:
    """Makes the endpoint's deliveries for its merchant's events after seq
    ``last_seq`` and moves its cursor past them; True if some are left."""
    rows = conn.execute(
        "SELECT position, event_id, seq, type FROM events"
        " WHERE merchant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (merchant_id, last_seq, DISCOVER_BATCH),
    ).fetchall()
    if not rows:
        return False
    conn.executemany(
        "INSERT INTO webhook_deliveries"
        " (endpoint_id, event_position, event_id, seq, type, status, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
        [(endpoint_id, pos, eid, seq, typ, now, now) for pos, eid, seq, typ in rows],
    )
    # A redelivery may discover for the endpoint while a scan does: the
    # cursor only moves forward.
    cursor = rows[-1][2]
    conn.execute(
        "UPDATE webhook_endpoints SET last_seq = ? WHERE id = ? AND last_seq < ?",
        (cursor, endpoint_id, cursor),
    )
    return len(rows) == DISCOVER_BATCH


class WebhookStore:
    def __init__(self, worker: Worker, dialect: Dialect) -> None:
        self._worker = worker
        self._dialect = dialect

    @classmethod
    def of(cls, storage: Storage) -> WebhookStore:
        return cls(*worker_of(storage))

    # The merchant's API.

    async def create_endpoint(
        self, merchant_id: str, url: str, *, now: int
    ) -> tuple[Endpoint, str]:
        """Returns the endpoint and its secret, which the API shows once."""
        endpoint = Endpoint(credentials.new_id("wh"), merchant_id, url, True, now, None)
        secret = signing.new_secret()

        def op(conn: Connection) -> None:
            (enabled,) = conn.execute(
                "SELECT COUNT(*) FROM webhook_endpoints WHERE merchant_id = ? AND enabled = 1",
                (merchant_id,),
            ).fetchone()
            if enabled >= MAX_ENABLED_ENDPOINTS:
                raise WebhookRefused(WebhookRefusal.TOO_MANY)
            conn.execute(
                "INSERT INTO webhook_endpoints"
                " (id, merchant_id, url, secret, enabled, last_seq, created_at)"
                " VALUES (?, ?, ?, ?, 1, ?, ?)",
                (endpoint.id, merchant_id, url, secret, _last_event_seq(conn, merchant_id), now),
            )

        await self._worker.run(op)
        return endpoint, secret

    async def list_endpoints(self, merchant_id: str) -> list[Endpoint]:
        def op(conn: Connection) -> list[Endpoint]:
            rows = conn.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints"
                " WHERE merchant_id = ? ORDER BY created_at, id",
                (merchant_id,),
            ).fetchall()
            return [_endpoint(row) for row in rows]

        return await self._worker.run(op)

    async def disable_endpoint(self, merchant_id: str, endpoint_id: str, *, now: int) -> Endpoint:
        """Stops deliveries to it; its log stays readable. Idempotent."""

        def op(conn: Connection) -> Endpoint:
            endpoint = _own_endpoint(conn, merchant_id, endpoint_id)
            if not endpoint.enabled:
                return endpoint
            conn.execute(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ? WHERE id = ?",
                (now, endpoint_id),
            )
            conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = NULL"
                " WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL",
                (endpoint_id,),
            )
            return Endpoint(endpoint.id, merchant_id, endpoint.url, False, endpoint.created_at, now)

        return await self._worker.run(op)

    async def deliveries(self, merchant_id: str, endpoint_id: str, *, limit: int) -> list[Delivery]:
        """The endpoint's log, newest event first."""

        def op(conn: Connection) -> list[Delivery]:
            _own_endpoint(conn, merchant_id, endpoint_id)
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
                " WHERE endpoint_id = ? ORDER BY event_position DESC LIMIT ?",
                (endpoint_id, limit),
            ).fetchall()
            return [_delivery(row) for row in rows]

        return await self._worker.run(op)

    async def redeliver(
        self, merchant_id: str, endpoint_id: str, event_id: str, *, now: int
    ) -> Delivery:
        """Queues one more attempt of the event, due now. A pending delivery
        keeps its retry schedule after it; a delivered or failed one gets this
        one attempt."""

        def op(conn: Connection) -> Delivery:
            endpoint = _own_endpoint(conn, merchant_id, endpoint_id)
            if not endpoint.enabled:
                raise WebhookRefused(WebhookRefusal.DISABLED)
            # The event may be newer than the dispatcher's last scan.
            (last_seq,) = conn.execute(
                "SELECT last_seq FROM webhook_endpoints WHERE id = ?", (endpoint_id,)
            ).fetchone()
            if last_seq < _last_event_seq(conn, merchant_id):
                _discover(conn, endpoint_id, merchant_id, last_seq, now)
            changed = conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?"
                " WHERE endpoint_id = ? AND event_id = ?",
                (now, endpoint_id, event_id),
            ).rowcount
            if changed != 1:
                raise WebhookRefused(WebhookRefusal.NO_DELIVERY)
            row = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
                " WHERE endpoint_id = ? AND event_id = ?",
                (endpoint_id, event_id),
            ).fetchone()
            return _delivery(row)

        return await self._worker.run(op)

    # The dispatcher's side.

    async def scan(self, *, now: int, partitions: Sequence[int] | None = None) -> Scan:
        """Turns new events into deliveries, and says what is due; with
        ``partitions``, for the endpoints of merchants in them alone
        (``psp_server/storage/partitions.py``; on a shared database only)."""
        self._check(partitions)
        held = None if partitions is None else (PARTITIONS, list(partitions))
        dialect = self._dialect

        def op(conn: Connection) -> Scan:
            if held is None:
                behind = conn.execute(_ENDPOINTS_BEHIND).fetchall()
            else:
                behind = conn.execute(
                    f"{_ENDPOINTS_BEHIND} AND {dialect.in_partitions('e.merchant_id')}", held
                ).fetchall()
            more = False
            for endpoint_id, merchant_id, last_seq in behind:
                more |= _discover(conn, endpoint_id, merchant_id, last_seq, now)
            if held is None:
                due = conn.execute(
                    # By time: what is due now, not everything scheduled.
                    "SELECT d.endpoint_id FROM webhook_deliveries d"
                    f"{self._dialect.indexed_by('webhook_deliveries_due')}"
                    f"{_DUE_ENDPOINTS}{_MOST_OVERDUE_FIRST}",
                    (now,),
                ).fetchall()
                # Only enabled endpoints have attempts scheduled (disabling clears them).
                (next_due,) = conn.execute(
                    "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE next_attempt_at > ?",
                    (now,),
                ).fetchone()
            else:
                due = conn.execute(
                    "SELECT d.endpoint_id FROM webhook_deliveries d"
                    f"{_DUE_ENDPOINTS} AND {dialect.in_partitions('e.merchant_id')}"
                    f"{_MOST_OVERDUE_FIRST}",
                    (now, *held),
                ).fetchall()
                (next_due,) = conn.execute(
                    "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d"
                    " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                    " WHERE d.next_attempt_at > ?"
                    f" AND {dialect.in_partitions('e.merchant_id')}",
                    (now, *held),
                ).fetchone()
            return Scan([row[0] for row in due], next_due, more)

        return await self._worker.run(op)

    async def pending(self) -> int:
        """Deliveries waiting for an attempt, every merchant's (``/metrics``):
        a count over the partial index of scheduled deliveries."""

        def op(conn: Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL"
            ).fetchone()
            return int(row[0])

        return await self._worker.read(op)

    async def due(
        self,
        endpoint_id: str,
        *,
        now: int,
        limit: int,
        partitions: Sequence[int] | None = None,
    ) -> list[DueDelivery]:
        """The endpoint's deliveries due now: oldest schedule first, then in
        the order the events were written; none when ``partitions`` is
        given and the endpoint's merchant is not in them."""
        self._check(partitions)
        dialect = self._dialect

        def op(conn: Connection) -> list[DueDelivery]:
            if partitions is None:
                rows = conn.execute(
                    f"{_DUE_DELIVERIES}{_OLDEST_SCHEDULE_FIRST}", (endpoint_id, now, limit)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"{_DUE_DELIVERIES} AND {dialect.in_partitions('e.merchant_id')}"
                    f"{_OLDEST_SCHEDULE_FIRST}",
                    (endpoint_id, now, PARTITIONS, list(partitions), limit),
                ).fetchall()
            return [
                DueDelivery(endpoint_id, pos, eid, url, secret, payload.encode(), scheduled)
                for pos, eid, url, secret, payload, scheduled in rows
            ]

        return await self._worker.run(op)

    def _check(self, partitions: Sequence[int] | None) -> None:
        if partitions is not None and not self._dialect.shared:
            raise StorageError("merchant partitions need a database that several processes share")

    async def record(
        self, due: DueDelivery, outcome: Outcome, policy: RetryPolicy, rng: random.Random
    ) -> Delivery | None:
        """Writes an attempt's outcome and schedules the next one, if any."""
        error = None if outcome.error is None else outcome.error[:ERROR_MAX]

        def op(conn: Connection) -> Delivery | None:
            key = (due.endpoint_id, due.event_position)
            row = conn.execute(
                "SELECT status, attempts, first_attempt_at, next_attempt_at, delivered_at"
                " FROM webhook_deliveries WHERE endpoint_id = ? AND event_position = ?",
                key,
            ).fetchone()
            if row is None:
                return None
            status, attempts, first_attempt_at, next_attempt_at, delivered_at = row
            attempts += 1
            if first_attempt_at is None:
                first_attempt_at = outcome.started_at
            queued_meanwhile = next_attempt_at != due.scheduled_at
            if outcome.delivered:
                status, next_attempt_at = "delivered", None
                if delivered_at is None:  # the first success; a redelivery keeps it
                    delivered_at = outcome.finished_at
            elif status == "pending":
                if outcome.finished_at - first_attempt_at >= policy.window_ms:
                    status, next_attempt_at = "failed", None
                else:
                    next_attempt_at = outcome.finished_at + policy.delay_ms(attempts, rng)
            else:
                # The one manual attempt of a delivered or failed delivery.
                next_attempt_at = None
            if queued_meanwhile:
                next_attempt_at = row[3]
            conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, first_attempt_at = ?,"
                " last_attempt_at = ?, last_status_code = ?, last_error = ?,"
                " next_attempt_at = ?, delivered_at = ?"
                " WHERE endpoint_id = ? AND event_position = ?",
                (
                    status,
                    attempts,
                    first_attempt_at,
                    outcome.started_at,
                    outcome.status_code,
                    error,
                    next_attempt_at,
                    delivered_at,
                    *key,
                ),
            )
            fresh = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
                " WHERE endpoint_id = ? AND event_position = ?",
                key,
            ).fetchone()
            return _delivery(fresh)

        return await self._worker.run(op)


def _own_endpoint(conn: Connection, merchant_id: str, endpoint_id: str) -> Endpoint:
    """The merchant's endpoint; another merchant's is as unknown as none."""
    row = conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ? AND merchant_id = ?",
        (endpoint_id, merchant_id),
    ).fetchone()
    if row is None:
        raise WebhookRefused(WebhookRefusal.NO_WEBHOOK)
    return _endpoint(row)
