"""``cashier-bridge``: start a checkout on a terminal and wait for its outcome
(``checkout``), or offer that to existing POS software over a local HTTP API
(``serve``). docs/cashier.md describes both."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence

from scan2pay_common import logformat

from .config import FIELDS, ConfigError, Settings, load
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_EXPIRED,
    EXIT_INTERRUPTED,
    EXIT_PAID,
    BridgeError,
)
from .flow import run_checkout
from .model import BridgeConfig, CheckoutOrder, Step
from .orders import InvalidOrder, build_order
from .output import Printer
from .session import BridgeSession
from .terminal_link import BrokerLink

log = logging.getLogger("cashier_bridge")

EXIT_OF_OUTCOME = {"paid": EXIT_PAID, "cancelled": EXIT_CANCELLED, "expired": EXIT_EXPIRED}

# How the order's fields are spelled on the command line, for the problems.
_FLAG_OF_FIELD = {
    "order_id": "--order",
    "amount": "--amount/--amount-minor",
    "amount_major": "--amount",
    "currency": "--currency",
    "terminal_id": "--terminal",
    "expires_in": "--expires-in",
    "description": "--description",
}


def build_parser() -> argparse.ArgumentParser:
    settings = argparse.ArgumentParser(add_help=False)
    group = settings.add_argument_group("settings (also environment and --config file)")
    group.add_argument("--config", help="a TOML file with the settings below as keys")
    for key, (flag, var, hint) in FIELDS.items():
        group.add_argument(flag, dest=key, help=f"{hint} (env {var})")

    parser = argparse.ArgumentParser(
        prog="cashier-bridge",
        description="The cashier PC's side of scan2pay: put a checkout's QR on a terminal and "
        "wait for its outcome, from the command line or a local HTTP API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    checkout = sub.add_parser(
        "checkout",
        parents=[settings],
        help="show one checkout's QR on a terminal and wait until it is paid",
        description="Exit 0 when paid; docs/cashier.md lists the other exit codes.",
    )
    checkout.add_argument("--order", help="your order id, unique per checkout, like A-1001")
    checkout.add_argument("--amount", help="the amount in major units, like 12.34")
    checkout.add_argument("--amount-minor", help="or in minor units, like 1234")
    checkout.add_argument("--currency", help="ISO 4217 code, like EUR")
    checkout.add_argument("--expires-in", help="seconds the QR can be paid (PSP default 300)")
    checkout.add_argument("--description", help="free text for the checkout, at most 200")
    checkout.add_argument("--json", action="store_true", help="one JSON object per line")
    watch = sub.add_parser(
        "watch",
        parents=[settings],
        help="print the payments customers make at a till's printed code, until interrupted",
        description="One line per payment at the till's static QR code (docs/static-qr.md).",
    )
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    serve = sub.add_parser(
        "serve",
        parents=[settings],
        help="run the local HTTP API for POS software",
        description="A local HTTP API: POST /checkouts, GET /checkouts/{id}[/events], cancel.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", default="8765", help="port, 0 for any free one (8765)")
    return parser


def _whole_number(text: str | None) -> object:
    """``"1234"`` as 1234; anything else as given, for the checks to refuse."""
    if text is not None and text.strip().isdigit():
        return int(text.strip())
    return text


def _settings_of(args: argparse.Namespace, *, require_terminal: bool) -> Settings:
    """The bridge's settings from the flags, the environment and the
    config file. Raises ``ConfigError`` with every problem."""
    return load(
        {key: getattr(args, key) for key in FIELDS},
        config_file=args.config,
        require_terminal=require_terminal,
    )


def _parse_checkout(args: argparse.Namespace) -> tuple[Settings, CheckoutOrder]:
    """Every problem of the settings and of the order, at once."""
    problems: list[str] = []
    settings = None
    try:
        settings = _settings_of(args, require_terminal=True)
    except ConfigError as exc:
        problems += exc.problems
    order = None
    try:
        order = build_order(
            order_id=args.order,
            currency=args.currency,
            amount=_whole_number(args.amount_minor),
            amount_major=args.amount,
            # Missing or bad, the terminal is a settings problem, told above.
            default_terminal=settings.bridge.terminal_id if settings else "-",
            expires_in=_whole_number(args.expires_in),
            description=args.description,
        )
    except InvalidOrder as exc:
        problems += [f"{_FLAG_OF_FIELD.get(p.field, p.field)}: {p.message}" for p in exc.problems]
    if problems or settings is None or order is None:  # each is None only with a problem told
        raise ConfigError(problems)
    return settings, order


def _setup_logging(level: str) -> None:
    logformat.configure(level)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    if args.command == "checkout":
        printer = Printer(as_json=args.json, started=started)
        try:
            settings, order = _parse_checkout(args)
        except ConfigError as exc:
            printer.failure(exc)
            return EXIT_BAD_INPUT
        # Quiet by default: the step lines are the output.
        _setup_logging(settings.log_level or "WARNING")
        return asyncio.run(_checkout(settings.bridge, order, printer))
    if args.command == "watch":
        return _watch_main(args, started)
    return _serve_main(args)


def _watch_main(args: argparse.Namespace, started: float) -> int:
    printer = Printer(as_json=args.json, started=started)
    try:
        settings = _settings_of(args, require_terminal=True)
    except ConfigError as exc:
        printer.failure(exc)
        return EXIT_BAD_INPUT
    _setup_logging(settings.log_level or "WARNING")
    return asyncio.run(_watch(settings.bridge, printer))


def _news(broker: BrokerLink, heard: int, stop: asyncio.Event) -> Callable[[], bool | None]:
    return lambda: True if stop.is_set() or broker.static_heard > heard else None


async def _watch(config: BridgeConfig, printer: Printer) -> int:
    """Prints each payment at the till's printed code as the PSP's signed
    event announces it, from now until SIGINT or SIGTERM (exit 0)."""
    terminal_id = config.terminal_id
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with BridgeSession(config) as session:
        try:
            _, broker = await session.connected(session.psp)
        except BridgeError as exc:
            printer.failure(exc)
            return exc.exit_code
        heard = broker.static_heard
        printer.step(
            Step(
                "watching",
                f"watching till {terminal_id} for payments at its printed codes",
                time.monotonic(),
                {"terminal_id": terminal_id},
            )
        )
        while not stop.is_set():
            for payment in broker.static_payments_since(heard):
                if payment.terminal_id == terminal_id:
                    data = payment.to_json()
                    printer.step(Step("static_payment", payment.message(), time.monotonic(), data))
            heard = broker.static_heard
            # The signal handler sets ``stop``; the wait is short so that
            # it is seen within a second.
            await broker.until(_news(broker, heard, stop), time.monotonic() + 1.0)
    return 0


async def _checkout(config: BridgeConfig, order: CheckoutOrder, printer: Printer) -> int:
    loop = asyncio.get_running_loop()
    flow = asyncio.create_task(run_checkout(config, order, printer.step))
    interrupted: list[signal.Signals] = []

    def interrupt(sig: signal.Signals) -> None:
        # A second signal cancels the clean-up too: the cashier insists.
        interrupted.append(sig)
        flow.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig)
    try:
        result = await flow
    except asyncio.CancelledError:
        if not interrupted:
            raise
        if "interrupted" not in printer.seen:
            printer.failure(_Interrupted(f"interrupted by {interrupted[0].name}"))
        return EXIT_INTERRUPTED
    except BridgeError as exc:
        printer.failure(exc, elapsed_ms=(time.monotonic() - printer.started) * 1000)
        return exc.exit_code
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OF_OUTCOME[result.outcome]


class _Interrupted(BridgeError):
    exit_code = EXIT_INTERRUPTED
    code = "interrupted"


def _serve_main(args: argparse.Namespace) -> int:
    problems: list[str] = []
    settings = None
    try:
        settings = _settings_of(args, require_terminal=False)
    except ConfigError as exc:
        problems += exc.problems
    port = _whole_number(args.port)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        problems.append(f"--port: {args.port!r} is not a port; expected 0 to 65535")
    if problems or settings is None or not isinstance(port, int):
        Printer(as_json=False, started=0).failure(ConfigError(problems))
        return EXIT_BAD_INPUT
    _setup_logging(settings.log_level or "INFO")  # a service: its requests are worth a line
    if not _is_loopback(args.host):
        log.warning(
            "listening on %s: the local API has no authentication; anyone who reaches it can "
            "start and cancel checkouts. Keep it on 127.0.0.1 unless a firewall guards it.",
            args.host,
        )
    try:
        return asyncio.run(_serve(settings.bridge, args.host, port))
    except OSError as exc:
        print(f"cashier-bridge: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(config: BridgeConfig, host: str, port: int) -> int:
    from .local_api import start_local_api

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await start_local_api(config, host, port)
    print(f"listening on {server.url}", flush=True)
    await stop.wait()
    log.info("stopping: cancelling the checkouts still running")
    await server.stop()
    return 0
