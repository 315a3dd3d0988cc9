"""The application's typed state: every ``web.AppKey`` of the PSP, here
and nowhere else. The classes they hold live in modules that do not
import this one, so that importing it starts no cycle."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractResolver

from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.header_deadline import HeaderDeadlines
from psp_server.api.guards.rate_limiter import RateLimiter
from psp_server.api.in_flight import InFlight
from psp_server.metrics import Metrics
from psp_server.mqtt.census import Census
from psp_server.mqtt.presence import Presence
from psp_server.outbox.relay import OutboxRelay
from psp_server.outbox.wake import WakeEvent
from psp_server.pairing.service import Pairing
from psp_server.runtime.config import Settings
from psp_server.storage import Backend, Storage
from psp_server.storage.partitions import Partitions
from psp_server.web.board_hub import BoardHub
from psp_server.web.session_keys import SessionKeys
from psp_server.webhooks.destinations import DestinationPolicy
from psp_server.webhooks.dispatcher import WebhookDispatcher
from psp_server.webhooks.store import WebhookStore
from scan2pay_common.clock import Clock

SETTINGS = web.AppKey("settings", Settings)
# The database, chosen once from settings.db: it opens the storage, leases
# the partitions and wakes the relay when another process wrote events.
BACKEND = web.AppKey("backend", Backend)
STORAGE = web.AppKey("storage", Storage)
# What every handler and background task takes as now; tests give a MovableClock.
CLOCK = web.AppKey("clock", Clock)
# Set whenever events were written; the relay and the webhook dispatcher hear it.
RELAY_WAKE = web.AppKey("relay_wake", WakeEvent)
RELAY = web.AppKey("relay", OutboxRelay)
# Which terminals are online, for the merchant's live board; only with a broker.
PRESENCE = web.AppKey("presence", Presence)
# How many terminals are online over all merchants (/metrics); with a broker
# and metrics on.
CENSUS = web.AppKey("terminal_census", Census)
# What the PSP counts (psp_server/metrics): NO_METRICS with --metrics off.
METRICS = web.AppKey("metrics", Metrics)
# The merchants whose events and webhooks this process serves; the relay and
# the webhook dispatcher share it, so that one process does both for a merchant.
PARTITION_LEASES = web.AppKey("partition_leases", Partitions)
WEBHOOK_STORE = web.AppKey("webhook_store", WebhookStore)
WEBHOOK_DISPATCHER = web.AppKey("webhook_dispatcher", WebhookDispatcher)
# Where webhooks may go (--webhook-allow-networks), and, when the app was
# given one, the resolver of endpoints' names (tests give their own).
WEBHOOK_DESTINATIONS = web.AppKey("webhook_destinations", DestinationPolicy)
WEBHOOK_RESOLVER = web.AppKey("webhook_resolver", AbstractResolver)

# The HTTP side: each connection's deadline for its request headers, and
# the idempotency keys whose first request is still being served here.
DEADLINES = web.AppKey("header_deadlines", HeaderDeadlines)
IN_FLIGHT = web.AppKey("idempotency_in_flight", InFlight)

# The merchant's board: the boards open in this process, and the key that
# makes and checks session cookies and CSRF tokens.
BOARD_HUB = web.AppKey("board_hub", BoardHub)
SESSION_KEYS = web.AppKey("merchant_session_keys", SessionKeys)

# Every rate limit's buckets: shared by the workers of --workers N when
# their supervisor made the table, else this process's own.
RATE_BUCKETS = web.AppKey("rate_buckets", BucketTable)

# Pairing terminals.
PAIRING = web.AppKey("pairing", Pairing)
# Approvals on the board, per client address and per code tried.
APPROVALS_PER_IP = web.AppKey("pair_approvals_per_ip", RateLimiter)
APPROVALS_PER_CODE = web.AppKey("pair_approvals_per_code", RateLimiter)
