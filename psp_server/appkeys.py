"""The application's typed state."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .config import Settings
from .relay import OutboxRelay
from .storage import Storage

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
RELAY_WAKE = web.AppKey("relay_wake", asyncio.Event)
RELAY = web.AppKey("relay", OutboxRelay)
