"""The terminal's life in one process: pairing while it has no
credentials, in service once it has, and back to pairing when it is
unpaired (docs/pairing.md). One painter thread and one display serve both
states, so that nothing is closed or reopened between them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hardware.base import Display

from .clock import Clock
from .config import TerminalConfig, Unpaired
from .daemon import TerminalDaemon
from .pairing import PairingFlow, forget_pairing
from .panel import Panel

log = logging.getLogger(__name__)

Reload = Callable[[], TerminalConfig | Unpaired]


async def serve(
    loaded: TerminalConfig | Unpaired,
    open_display: Callable[[], Display],
    config_path: Path | None,
    reload: Reload,
    stop: asyncio.Event,
    clock: Clock | None = None,
) -> None:
    """``reload`` reads the settings again, once pairing or unpairing has
    rewritten the config file; it raises ``ConfigError`` as ``load`` does.
    The display is opened in the painter's thread, and again after a
    failure: a panel that is not there yet is ridden out, not fatal."""
    painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="painter")
    panel = Panel(open_display)
    try:
        current = loaded
        while not stop.is_set():
            if isinstance(current, Unpaired):
                if config_path is None:  # pragma: no cover - load_for_service requires it
                    raise RuntimeError("pairing needs a config file")
                log.info("not paired: pairing with the PSP at %s", current.psp_url)
                flow = PairingFlow(current, config_path, panel, painter)
                if not await flow.run(stop):
                    break
                current = reload()
                continue
            log.info(
                "terminal %s of merchant %s on %s, broker %s",
                current.terminal_id,
                current.merchant_id,
                current.display,
                current.mqtt,
            )
            if not current.psp_public_keys:
                log.warning(
                    "no --psp-public-key: display commands and events are believed unchecked;"
                    " production terminals must have the PSP's key (docs/signing.md)"
                )
            daemon = TerminalDaemon(current, panel, painter=painter, clock=clock)
            unpaired = await daemon.run(stop)
            if not unpaired or config_path is None:
                break
            forget_pairing(config_path)
            current = reload()
    finally:
        await asyncio.get_running_loop().run_in_executor(painter, panel.close)
        painter.shutdown(wait=False)
