"""``psp-server terminal approve CODE --merchant M --terminal T`` and
``psp-server terminal revoke --merchant M --terminal T``: the board's
pairing and unpairing, for the PSP's operator (docs/pairing.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from psp_server.pairing.broker import Broker
from psp_server.pairing.service import Pairing
from psp_server.pairing.store import PairingRefused
from psp_server.runtime.config import Settings
from psp_server.storage import Storage
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.errors import InvalidValue

ACTIONS = ("approve", "revoke")


def add_actions(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    add_db: Callable[[argparse.ArgumentParser], None],
) -> None:
    approve = actions.add_parser(
        "approve", help="approve the code a terminal shows: make its account, hand it its settings"
    )
    approve.add_argument("code", help="the code on the terminal's screen, like ABCD-EFGH-JK")
    revoke = actions.add_parser(
        "revoke", help="unpair a terminal: drop its broker account; it shows its pairing screen"
    )
    for parser in (approve, revoke):
        parser.add_argument("--merchant", required=True, help="the merchant id, mer_...")
        parser.add_argument("--terminal", required=True, help="the terminal id, like lane-1")
        add_db(parser)
        parser.add_argument(
            "--mosquitto-dir", help="the broker's passwd and acl folder (SCAN2PAY_MOSQUITTO_DIR)"
        )
        parser.add_argument(
            "--terminal-mqtt", help="the broker as terminals reach it (SCAN2PAY_TERMINAL_MQTT)"
        )
        parser.add_argument(
            "--terminal-mqtt-ca", help="its CA's PEM file (SCAN2PAY_TERMINAL_MQTT_CA)"
        )
        parser.add_argument(
            "--mosquitto-reload",
            help="the command that reloads the broker (SCAN2PAY_MOSQUITTO_RELOAD)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")


async def run(
    storage: Storage,
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """0, or 2 with what was wrong when nothing was changed. ``clock``: the
    command's now (``psp-server``'s)."""
    out = out or sys.stdout
    err = err or sys.stderr
    service = Pairing(storage, Broker.of(settings), settings.public_url or "", clock)
    try:
        if args.action == "approve":
            done = await service.approve(args.code, args.merchant, args.terminal)
            problem = done.reload_problem
            said = f"terminal {done.terminal_id} of merchant {done.merchant_id} is paired"
            shown = {"merchant_id": done.merchant_id, "terminal_id": done.terminal_id}
        else:
            gone = await service.unpair(args.merchant, args.terminal)
            problem = gone.reload_problem
            said = f"terminal {gone.terminal_id} of merchant {gone.merchant_id} is unpaired"
            shown = {"merchant_id": gone.merchant_id, "terminal_id": gone.terminal_id}
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}; nothing was changed", file=err)
        return 2
    except PairingRefused as exc:
        message = exc.message
        if exc.code == "pairing_unavailable":
            message = (
                "give --terminal-mqtt and --mosquitto-dir (or SCAN2PAY_TERMINAL_MQTT and"
                " SCAN2PAY_MOSQUITTO_DIR), as psp-server serve has them"
            )
        print(f"psp-server: {message}", file=err)
        return 2
    if args.json:
        print(json.dumps({**shown, "action": args.action, "reload_problem": problem}), file=out)
        return 0
    print(said, file=out)
    if args.action == "approve":
        print("it collects its settings within seconds and goes into service", file=out)
    if problem:
        print(f"(the broker has not reloaded: {problem})", file=out)
    return 0
