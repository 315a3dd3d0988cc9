"""The terminal pairing itself (docs/pairing.md): it starts a pairing with
the PSP, shows the code and a QR of the board's pairing page, polls until
a merchant approves, writes what the PSP hands over into its config file
(mode 0600, atomically: ``config_file``) and returns, so that the caller
puts it into service in the same process.

A new device secret is made for each pairing and only its hash goes out
at the start; the secret itself is sent only to collect, over the same
channel. A code that expires unapproved is replaced by a new one; a PSP
that cannot be reached is retried with backoff while the screen says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

from hardware.base import Display, Frame
from scan2pay_common import sdnotify
from scan2pay_common.backoff import Backoff
from scan2pay_common.errors import InvalidValue
from scan2pay_common.logtext import loggable
from scan2pay_common.timefmt import now_ms, to_rfc3339

from . import config_file, pairing_client
from .config import PAIRING_KEYS, Unpaired
from .pairing_client import PspError, Settings, Started
from .pairing_screen import PairingScreen, content, render
from .panel import Panel

log = logging.getLogger(__name__)

UNREACHABLE = "No connection to the PSP"
NAME_MAX = 60


def ca_path(config_path: Path) -> Path:
    """Where pairing writes the broker's CA: beside the config file."""
    return config_path.with_name(f"{config_path.stem}-broker-ca.pem")


def check_writable(config_path: Path) -> str | None:
    """Why pairing could not write its result, if it could not: checked
    before a code is shown, since the PSP hands the settings over once."""
    folder = config_path.parent
    if not folder.is_dir():
        return f"{folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable by this user, and pairing writes {config_path.name} there"
    return None


def draw(display: Display, screen: PairingScreen, now: int) -> None:
    """Renders (for pixel displays) and shows one frame. Blocking."""
    geometry = display.geometry
    image = None if geometry is None else render(screen, geometry, now)
    display.show(Frame(content(screen, now), image))


class PairingFlow:
    def __init__(
        self, unpaired: Unpaired, config_path: Path, panel: Panel, painter: Executor
    ) -> None:
        self.psp_url = unpaired.psp_url
        self.config_path = config_path
        self.panel = panel
        self.painter = painter
        self.screen = PairingScreen()
        self._changed = asyncio.Event()
        self._changed.set()
        self.frames = 0

    def show(self, screen: PairingScreen) -> None:
        if screen != self.screen:
            self.screen = screen
            self._changed.set()

    async def run(self, stop: asyncio.Event) -> bool:
        """True once paired and written; False when ``stop`` was set first."""
        async with asyncio.TaskGroup() as group:
            helpers = [
                group.create_task(self._paint_forever(), name="pairing painter"),
                group.create_task(sdnotify.watchdog_forever(), name="watchdog"),
            ]
            pairing = group.create_task(self._pair(), name="pairing")
            stopping = group.create_task(stop.wait(), name="stop")
            # Ready with or without a panel: a daemon that waited for its
            # first frame would be restarted forever by systemd on a
            # miswired one (the painter keeps trying meanwhile).
            sdnotify.notify("READY=1")
            await asyncio.wait({pairing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                sdnotify.notify("STOPPING=1")
            for task in [*helpers, pairing, stopping]:
                task.cancel()
        return pairing.done() and not pairing.cancelled()

    async def _pair(self) -> None:
        backoff = Backoff(initial=1.0, maximum=30.0)
        while True:
            secret = pairing_client.new_device_secret()
            try:
                started = await pairing_client.start(self.psp_url, secret)
            except PspError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "cannot start pairing with %s: %s; again in %.0fs",
                    self.psp_url,
                    loggable(exc.message),
                    delay,
                )
                self.show(PairingScreen(message=_say(exc)))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            log.info(
                "pairing code %s, valid until %s: approve it on the merchant board (%s)"
                " or with psp-server terminal approve",
                started.code,
                to_rfc3339(started.expires_at),
                loggable(started.url),
            )
            self.show(PairingScreen(started.code, started.url, started.expires_at))
            settings = await self._wait(started, secret)
            if settings is None:
                continue
            try:
                self._write(started, secret, settings)
            except (OSError, InvalidValue) as exc:
                # Handed over once, so lost: the merchant unpairs and pairs again.
                log.error(
                    "cannot write %s (%s): unpair terminal %s on the board and pair again",
                    self.config_path,
                    loggable(exc),
                    settings.terminal_id,
                )
                self.show(PairingScreen(message="Cannot save the settings"))
                await asyncio.sleep(backoff.next_delay())
                continue
            log.info(
                "paired as terminal %s of merchant %s; settings written to %s",
                settings.terminal_id,
                settings.merchant_id,
                self.config_path,
            )
            return

    async def _wait(self, started: Started, secret: str) -> Settings | None:
        """The settings once approved; None when this pairing is over
        without them (the code expired), and a new one must start."""
        while True:
            if now_ms() >= started.expires_at:
                log.info("pairing code %s expired unapproved; starting again", started.code)
                return None
            await asyncio.sleep(started.poll_interval)
            try:
                polled = await pairing_client.poll(self.psp_url, started.pairing_id, secret)
            except PspError as exc:
                if exc.code == "unreachable" or (exc.status or 500) >= 500:
                    self.show(replace(self.screen, message=UNREACHABLE))
                    continue
                log.warning("pairing %s is over: %s", started.pairing_id, loggable(exc.message))
                return None
            self.show(replace(self.screen, message=None))
            if isinstance(polled, Settings):
                return polled
            if isinstance(polled, pairing_client.Waiting):
                continue
            # Collected or unpaired already: not by this device, whose first
            # collection never arrived. The merchant unpairs it and pairs again.
            log.warning(
                "pairing %s was approved, but its settings never reached this terminal;"
                " unpair it on the board, then pair again",
                started.pairing_id,
            )
            return None

    def _write(self, started: Started, secret: str, settings: Settings) -> None:
        changes: dict[str, Any] = {
            "mqtt": settings.mqtt_url,
            "merchant": settings.merchant_id,
            "terminal": settings.terminal_id,
            "psp_url": self.psp_url,
            "psp_public_key": list(settings.psp_keys),
            "pairing_id": started.pairing_id,
            "device_secret": secret,
        }
        if settings.mqtt_ca is not None:
            path = ca_path(self.config_path)
            config_file.write_atomically(path, settings.mqtt_ca, mode=config_file.PUBLIC)
            changes["mqtt_ca"] = str(path)
        name = " ".join(settings.merchant_name.split())[:NAME_MAX].strip()
        if name and "name" not in config_file.read(self.config_path):
            changes["name"] = name
        config_file.rewrite(self.config_path, changes, drop=PAIRING_KEYS, why="Paired")

    async def _paint_forever(self) -> None:
        """Draws when the screen changes, and each second for the countdown."""
        backoff = Backoff(initial=0.2, maximum=10.0)
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1.0)
            self._changed.clear()
            try:
                await loop.run_in_executor(
                    self.painter, self.panel.paint, draw, self.screen, now_ms()
                )
            except Exception as exc:  # noqa: BLE001 - as the daemon's painter: ridden out, logged
                delay = backoff.next_delay()
                log.warning("display failed: %s; retrying in %.2fs", exc, delay)
                self._changed.set()
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.frames += 1


def _say(exc: PspError) -> str:
    if exc.code == "pairing_unavailable":
        return "The PSP does not pair terminals"
    if exc.code == "unreachable" or (exc.status or 500) >= 500:
        return UNREACHABLE
    if exc.code == "rate_limited":
        return "Too many pairings; waiting"
    return "The PSP refused pairing"


def forget_pairing(config_path: Path) -> None:
    """Takes the credentials out of the config file (the terminal was
    unpaired); the PSP's URL and the display's settings stay."""
    config_file.rewrite(config_path, {}, drop=PAIRING_KEYS, why="Unpaired")
