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

from hardware.base import Display, Geometry
from hardware.errors import HardwareError
from scan2pay_common.emv import EmvError

from .clock import Clock
from .config import DisplayTooSmall, TerminalConfig, Unpaired
from .daemon import TerminalDaemon
from .pairing import PairingFlow, forget_pairing
from .panel import Panel
from .qr_fit import emv_fit, longest_payload

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
            if current.qr_format == "emv":
                await _check_emv_fits(current, panel, painter)
            daemon = TerminalDaemon(current, panel, painter=painter, clock=clock)
            unpaired = await daemon.run(stop)
            if not unpaired or config_path is None:
                break
            forget_pairing(config_path)
            current = reload()
    finally:
        await asyncio.get_running_loop().run_in_executor(painter, panel.close)
        painter.shutdown(wait=False)


async def _check_emv_fits(
    config: TerminalConfig, panel: Panel, painter: ThreadPoolExecutor
) -> None:
    """Raises ``DisplayTooSmall`` when the panel cannot show the longest EMV
    payload this terminal may get (terminal/qr_fit.py). A display that is
    not there yet is not checked: the daemon rides it out, and draws what
    fits once it comes."""
    found: list[Geometry | None] = []

    def geometry_of(device: Display) -> None:
        found.append(device.geometry)

    try:
        await asyncio.get_running_loop().run_in_executor(painter, panel.paint, geometry_of)
    except HardwareError as exc:
        log.warning("qr_format emv: the display is not there yet (%s); its fit is not checked", exc)
        return
    geometry = found[0] if found else None
    if geometry is None:
        return  # a device that encodes the QR itself (a printer, a Nextion)
    try:
        payload = longest_payload(config.psp_url, config.terminal_id)
    except EmvError as exc:
        raise DisplayTooSmall([f'qr_format = "emv": {exc.message} (psp_url)']) from None
    fit = emv_fit(geometry.width, geometry.height, payload)
    problem = fit.problem()
    if problem is not None:
        raise DisplayTooSmall([problem])
    log.info(
        "qr_format emv: EMV payloads of up to %d characters drawn as QR version %s"
        " at %s px a module",
        fit.length,
        fit.version,
        fit.scale,
    )
