"""``scan2pay-terminal print-sticker``: prints a sticker for a till's static
QR code on the configured receipt printer, with the printer's own QR
command (``hardware.escpos``): the merchant's name, "Scan to pay", the QR
code, the till's label and the short id the terminal also shows.

The printer is ``--printer`` or else the configured display when it is a
printer (``escpos:PORT``). The label defaults to the terminal's id and the
merchant's name to the configured shop name (``name``), where they are set.

The command has no event loop: the print blocks this process alone, for as
long as the serial port takes to carry it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from hardware.errors import DisplaySpecError, HardwareError
from hardware.printer import Printer, StickerSlip

from .cli import EXIT_CONFIG, EXIT_DISPLAY, add_settings, report_config_error, settings_given
from .config import ConfigError, StickerSettings, load_sticker_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal print-sticker",
        description="Prints a sticker for a till's static QR code on the configured printer.",
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--url", help="the static code's URL, like HTTPS://PAY.EXAMPLE/S/CODE")
    data.add_argument(
        "--payload", help="what the QR code holds instead of a URL (an EMVCo payload)"
    )
    parser.add_argument(
        "--merchant-name", help="the merchant's name (default: the configured name)"
    )
    parser.add_argument("--label", help="the till's label (default: the terminal's id)")
    parser.add_argument(
        "--short-id", required=True, help="the static code's short id, as the terminal shows it"
    )
    parser.add_argument(
        "--printer",
        help="escpos:PORT[,OPTION=VALUE...], noop or dummy (default: the configured display)",
    )
    add_settings(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    from hardware.registry import open_printer, parse_spec

    args = build_parser().parse_args(argv)
    try:
        settings = load_sticker_settings(
            settings_given(args), config_file=args.config, check_display=parse_spec
        )
        sticker = sticker_of(args, settings)
    except ConfigError as exc:
        return report_config_error(exc)
    spec = args.printer or settings.display
    try:
        printer = open_printer(spec)
    except DisplaySpecError as exc:
        print(f"scan2pay-terminal: --printer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except HardwareError as exc:
        print(f"scan2pay-terminal: cannot open the printer: {exc}", file=sys.stderr)
        return EXIT_DISPLAY
    return print_on(printer, sticker)


def print_on(printer: Printer, sticker: StickerSlip) -> int:
    try:
        printer.print_sticker(sticker)
    except ValueError as exc:  # data longer than the printer's QR command holds
        print(f"scan2pay-terminal: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except HardwareError as exc:
        print(f"scan2pay-terminal: the printer failed: {exc}", file=sys.stderr)
        return EXIT_DISPLAY
    finally:
        printer.close()
    print(f"printed a sticker for {sticker.till_label} ({sticker.short_id}) on {printer.name}")
    return 0


def sticker_of(args: argparse.Namespace, settings: StickerSettings) -> StickerSlip:
    """The sticker the flags and settings describe; every problem at once."""
    problems = []
    if args.url is not None and not _is_http_url(args.url):
        problems.append(f"--url: {args.url!r} is not an absolute http(s) URL")
    if args.payload is not None and not args.payload.strip():
        problems.append("--payload: empty")
    merchant_name = args.merchant_name or settings.name
    if not (merchant_name or "").strip():
        problems.append("--merchant-name: missing (or set name in the settings)")
    label = args.label or settings.terminal_id
    if not (label or "").strip():
        problems.append("--label: missing (or set terminal in the settings)")
    if not args.short_id.strip():
        problems.append("--short-id: empty")
    if problems:
        raise ConfigError(problems)
    return StickerSlip(args.payload or args.url, str(merchant_name), str(label), args.short_id)


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    printable = all("!" <= char <= "~" for char in text)
    return printable and parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
