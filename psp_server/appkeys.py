"""The application's typed state."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractResolver

from scan2pay_common.clock import Clock

from .config import Settings
from .partitions import Partitions
from .presence import Presence
from .relay import OutboxRelay
from .storage import Backend, Storage
from .wake import WakeEvent
from .webhooks.destinations import DestinationPolicy
from .webhooks.dispatcher import WebhookDispatcher
from .webhooks.store import WebhookStore

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
# The merchants whose events and webhooks this process serves; the relay and
# the webhook dispatcher share it, so that one process does both for a merchant.
PARTITION_LEASES = web.AppKey("partition_leases", Partitions)
WEBHOOK_STORE = web.AppKey("webhook_store", WebhookStore)
WEBHOOK_DISPATCHER = web.AppKey("webhook_dispatcher", WebhookDispatcher)
# Where webhooks may go (--webhook-allow-networks), and, when the app was
# given one, the resolver of endpoints' names (tests give their own).
WEBHOOK_DESTINATIONS = web.AppKey("webhook_destinations", DestinationPolicy)
WEBHOOK_RESOLVER = web.AppKey("webhook_resolver", AbstractResolver)
