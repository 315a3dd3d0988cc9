"""``scan2pay-terminal``: the checkout terminal daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from hardware.base import Display
from scan2pay_common import logformat

from .clock import Clock
from .config import FIELDS, ConfigError, TerminalConfig, load

log = logging.getLogger("terminal")

# A bad configuration does not mend itself: the unit does not restart on it
# (RestartPreventExitStatus=2). A display that fails is no exit at all.
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal",
        description="Shows the checkout's QR code and its outcome on this terminal's display.",
    )
    parser.add_argument("--config", help="a TOML file with the settings below as keys")
    for key, (flag, var, hint) in FIELDS.items():
        # A rotation has two keys: the flag may be given more than once.
        action = "append" if key == "psp_public_key" else "store"
        parser.add_argument(flag, dest=key, action=action, help=f"{hint} (env {var})")
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """``clock``: the daemon's idea of now; the system's clock, corrected by
    the PSP's while it is not synchronised, unless a test hands one in."""
    from hardware.registry import parse_spec

    one_malloc_arena()  # before a luma panel's driver starts its threads
    args = build_parser().parse_args(argv)
    flags = {key: getattr(args, key) for key in FIELDS}
    try:
        config = load(flags, config_file=args.config, check_display=parse_spec)
    except ConfigError as exc:
        print("scan2pay-terminal: bad configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    logformat.configure(config.log_level)
    # Opened by the daemon, which rides out a display that is not there yet.
    open_display = parse_spec(config.display).open
    asyncio.run(_run(config, open_display, clock))
    return 0


M_ARENA_MAX = -8  # glibc's malloc.h


def one_malloc_arena() -> bool:
    """Has glibc's malloc serve every thread from one arena. By default each
    thread that allocates gets an arena of its own, up to eight per core;
    here the painter's thread would keep some 0.8 MB of its own for images
    and fonts, and the thread that opens the broker connection some more,
    on a Pi Zero with 512 MB in all. The daemon's threads take turns (the
    painter draws one frame at a time, the event loop mostly holds the
    GIL), so sharing one arena costs them no waiting to speak of. Call it
    before any thread starts. False where the C library has no ``mallopt``
    (not glibc): nothing changes there."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))


async def _run(
    config: TerminalConfig, open_display: Callable[[], Display], clock: Clock | None
) -> None:
    from .daemon import TerminalDaemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "terminal %s of merchant %s on %s, broker %s",
        config.terminal_id,
        config.merchant_id,
        config.display,
        config.mqtt,
    )
    if not config.psp_public_keys:
        log.warning(
            "no --psp-public-key: display commands and events are believed unchecked;"
            " production terminals must have the PSP's key (docs/signing.md)"
        )
    await TerminalDaemon(config, open_display, clock=clock).run(stop)
    log.info("stopped")
