"""``scan2pay``: the umbrella command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import check_currency, parse_major
from scan2pay_common.mqtt_url import MqttTarget


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scan2pay", description="scan-to-pay by dynamic QR")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole scan-to-pay flow on embedded defaults")
    demo.add_argument(
        "--mqtt", help="use this broker (mqtt://host:port) instead of the embedded one"
    )
    demo.add_argument("--host", default="127.0.0.1", help="the PSP's listening address")
    demo.add_argument("--port", type=int, default=0, help="the PSP's port (0: any free one)")
    demo.add_argument("--public-url", help="the URL phones reach the PSP at")
    demo.add_argument("--amount", default="12.34", help="in major units (default 12.34)")
    demo.add_argument("--currency", default="EUR")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep everything running afterwards, with the display mirrored at /demo",
    )
    demo.add_argument("--no-draw", action="store_true", help="do not draw the terminal's screens")
    demo.add_argument(
        "--qr-format",
        choices=("url", "emv"),
        default="url",
        help="what the demo merchant's QR codes encode: the payment URL (default) or an EMVCo"
        " payload around it, on a 128x128 display (docs/emv.md)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .demo import DemoOptions, run_demo

    try:
        currency = check_currency(args.currency)
        amount = parse_major(args.amount, currency)
        mqtt = MqttTarget.parse(args.mqtt) if args.mqtt else None
    except InvalidValue as exc:
        print(f"scan2pay demo: {exc.message}", file=sys.stderr)
        return 2
    options = DemoOptions(
        mqtt=mqtt,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        amount=amount,
        currency=currency,
        serve=args.serve,
        draw=not args.no_draw,
        qr_format=args.qr_format,
    )
    try:
        return asyncio.run(run_demo(options))
    except KeyboardInterrupt:
        return 130
