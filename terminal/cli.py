"""``scan2pay-terminal``: the checkout terminal daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from hardware import luma_form
from hardware.base import Display
from hardware.errors import HardwareError
from scan2pay_common import logformat

from .config import FIELDS, ConfigError, TerminalConfig, load

log = logging.getLogger("terminal")

EXIT_CONFIG = 2
EXIT_DISPLAY = 3


# scan2pay-terminal COMMAND ...: each in a module of its own, imported when run.
COMMANDS = {
    "doctor": "checks this terminal's setup, one line a check (terminal/doctor/)",
    "test-pattern": "draws a test pattern and a sample QR on the display",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal",
        description="Shows the checkout's QR code and its outcome on this terminal's display.",
        epilog="commands (each takes the settings below too): "
        + "; ".join(f"scan2pay-terminal {name}: {what}" for name, what in COMMANDS.items()),
    )
    add_settings(parser)
    return parser


def add_settings(parser: argparse.ArgumentParser) -> None:
    """The settings' flags, which the daemon and each command take alike."""
    parser.add_argument("--config", help="a TOML file with the settings below as keys")
    luma = parser.add_argument_group(
        "luma.examples' display flags",
        "instead of a compact --display: --display ssd1306 --interface i2c --i2c-port 1 ...",
    )
    for key, (flag, var, hint) in FIELDS.items():
        # A rotation has two keys: the flag may be given more than once.
        action = "append" if key == "psp_public_key" else "store"
        group = luma if key in luma_form.KEYS else parser
        group.add_argument(flag, dest=key, action=action, help=f"{hint} (env {var})")


def settings_given(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, key) for key in FIELDS}


def report_config_error(error: ConfigError) -> int:
    print("scan2pay-terminal: bad configuration:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in COMMANDS:
        return _command(arguments[0], arguments[1:])
    from hardware.registry import open_display, parse_spec

    one_malloc_arena()  # before a luma panel's driver starts its threads
    args = build_parser().parse_args(arguments)
    try:
        config = load(settings_given(args), config_file=args.config, check_display=parse_spec)
    except ConfigError as exc:
        return report_config_error(exc)
    logformat.configure(config.log_level)
    try:
        display = open_display(config.display)
    except HardwareError as exc:
        print(f"scan2pay-terminal: cannot open the display: {exc}", file=sys.stderr)
        return EXIT_DISPLAY
    asyncio.run(_run(config, display))
    return 0


def _command(name: str, argv: list[str]) -> int:
    if name == "doctor":
        from .doctor import main as doctor

        return doctor(argv)
    from .test_pattern import main as test_pattern

    return test_pattern(argv)


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


async def _run(config: TerminalConfig, display: Display) -> None:
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
    await TerminalDaemon(config, display).run(stop)
    log.info("stopped")
