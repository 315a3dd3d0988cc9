"""``scan2pay-terminal``: the checkout terminal daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from hardware import luma_form
from hardware.base import Display
from scan2pay_common import logformat

from .clock import Clock
from .config import (
    FIELDS,
    NO_FLAG,
    ConfigError,
    DisplayTooSmall,
    TerminalConfig,
    Unpaired,
    load_for_service,
)
from .pairing import check_writable

log = logging.getLogger("terminal")

# A bad configuration does not mend itself: the unit does not restart on it
# (RestartPreventExitStatus=2). A display that fails is no exit of the
# daemon's; test-pattern, which has nothing else to do, exits with it.
EXIT_CONFIG = 2
EXIT_DISPLAY = 3


# `scan2pay-terminal pair --psp-url URL`: pair (again) on purpose. The file
# the settings go to when no --config is given.
PAIR = "pair"
DEFAULT_CONFIG = "/etc/scan2pay/terminal.toml"
# scan2pay-terminal COMMAND ...: each in a module of its own, imported when run.
COMMANDS = {
    "doctor": "checks this terminal's setup, one line a check (terminal/doctor/)",
    "test-pattern": "draws a test pattern and a sample QR on the display",
    "print-sticker": "prints a sticker for a till's static QR code on the receipt printer",
}


def build_parser(*, pair: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal pair" if pair else "scan2pay-terminal",
        description=(
            "Pairs this terminal with the PSP at --psp-url: shows a code for the merchant to"
            " approve, writes the settings the PSP hands over to --config, and goes into"
            " service (docs/pairing.md)."
            if pair
            else "Shows the checkout's QR code and its outcome on this terminal's display,"
            " and with --audio says each payment at its till aloud (docs/terminal.md, Sound)."
            " Without credentials it pairs itself (also: scan2pay-terminal pair --help)."
        ),
        epilog=None
        if pair
        else "commands (each takes the settings below too): "
        + "; ".join(f"scan2pay-terminal {name}: {what}" for name, what in COMMANDS.items()),
    )
    add_settings(parser, default_config=DEFAULT_CONFIG if pair else None)
    return parser


def add_settings(parser: argparse.ArgumentParser, *, default_config: str | None = None) -> None:
    """The settings' flags, which the daemon and each command take alike."""
    parser.add_argument(
        "--config",
        default=default_config,
        help="a TOML file with the settings below as keys"
        + (f"; pairing writes to it (default {default_config})" if default_config else ""),
    )
    luma = parser.add_argument_group(
        "luma.examples' display flags",
        "instead of a compact --display: --display ssd1306 --interface i2c --i2c-port 1 ...",
    )
    # Pairing writes these into the file; they get no flag, only their name.
    parser.set_defaults(**dict.fromkeys(NO_FLAG))
    for key, (flag, var, hint) in FIELDS.items():
        if key in NO_FLAG:
            continue
        # A rotation has two keys: the flag may be given more than once.
        action = "append" if key == "psp_public_key" else "store"
        group = luma if key in luma_form.KEYS else parser
        group.add_argument(flag, dest=key, action=action, help=f"{hint} (env {var})")


def settings_given(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, key) for key in FIELDS}


def report_config_error(error: ConfigError, *, after_pairing: bool = False) -> int:
    what = "bad configuration after pairing" if after_pairing else "bad configuration"
    print(f"scan2pay-terminal: {what}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """``clock``: the daemon's idea of now; the system's clock, corrected by
    the PSP's while it is not synchronised, unless a test hands one in."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in COMMANDS:
        return _command(words[0], words[1:])
    from hardware.registry import parse_spec

    one_malloc_arena()  # before a luma panel's driver starts its threads
    lgpio_work_folder()
    pair = words[:1] == [PAIR]
    args = build_parser(pair=pair).parse_args(words[1:] if pair else words)
    flags = settings_given(args)

    def reload() -> TerminalConfig | Unpaired:
        """The settings as the file now says (after pairing wrote it)."""
        return load_for_service(flags, config_file=args.config, check_display=parse_spec)

    try:
        config = load_for_service(
            flags, config_file=args.config, check_display=parse_spec, pair=pair
        )
        unwritable = None
        if isinstance(config, Unpaired) and args.config is not None:
            unwritable = check_writable(Path(args.config))
        if unwritable:
            raise ConfigError([f"--config: {unwritable}"])
    except ConfigError as exc:
        return report_config_error(exc)
    logformat.configure(config.log_level)
    # Opened by the daemon, which rides out a display that is not there yet.
    open_display = parse_spec(config.display).open
    try:
        asyncio.run(_run(config, open_display, args.config, reload, clock))
    except DisplayTooSmall as exc:
        return report_config_error(exc)
    except ConfigError as exc:
        # The file pairing wrote does not load: its other keys are wrong.
        return report_config_error(exc, after_pairing=True)
    return 0


def lgpio_work_folder() -> None:
    """rpi-lgpio, which luma's GPIO uses for SPI panels, makes a pipe in
    its working folder when imported (or in ``LG_WD``); run from a folder
    the terminal's user cannot write (``/``, another user's home), no SPI
    panel would ever open. The system's temporary folder is writable."""
    os.environ.setdefault("LG_WD", tempfile.gettempdir())


def _command(name: str, argv: list[str]) -> int:
    lgpio_work_folder()
    if name == "doctor":
        from .doctor import main as doctor

        return doctor(argv)
    if name == "print-sticker":
        from .print_sticker import main as print_sticker

        return print_sticker(argv)
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


async def _run(
    config: TerminalConfig | Unpaired,
    open_display: Callable[[], Display],
    config_file: str | None,
    reload: Callable[[], TerminalConfig | Unpaired],
    clock: Clock | None,
) -> None:
    from .service import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    path = None if config_file is None else Path(config_file)
    await serve(config, open_display, path, reload, stop, clock)
    log.info("stopped")
