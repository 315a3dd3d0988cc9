"""``psp-server static-code create|list|revoke``: a merchant's printed till
codes, for the PSP's operator, as the API's
``/v1/terminals/{terminal_id}/static-codes`` makes them
(docs/static-qr.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from psp_server.core.errors import Refused
from psp_server.core.static_code_input import request_in_major_units
from psp_server.core.static_codes import (
    StaticCode,
    StaticCodeRequest,
    code_json,
    new_static_code,
)
from psp_server.runtime.config import Settings
from psp_server.storage import Storage
from psp_server.storage.static_codes import StaticCodeStore
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.static_codes import check_static_code_id

COMMAND = "static-code"


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_db: Callable[[argparse.ArgumentParser], None],
) -> None:
    static = sub.add_parser(COMMAND, help="a merchant's printed till codes (docs/static-qr.md)")
    actions = static.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a printed code for a till")
    create.add_argument("--terminal", required=True, help="the till's terminal id, like lane-1")
    create.add_argument("--label", help="the till's name on the sticker (the terminal id)")
    create.add_argument("--currency", help="let customers type an amount in this ISO 4217 code")
    create.add_argument("--min", dest="open_min", help="the least they may type, like 1.00")
    create.add_argument("--max", dest="open_max", help="the most they may type, like 50.00")
    create.add_argument("--public-url", help="URL wallets reach (env SCAN2PAY_PUBLIC_URL)")
    listing = actions.add_parser("list", help="list the merchant's codes, newest first")
    listing.add_argument("--terminal", help="only this till's")
    revoke = actions.add_parser("revoke", help="revoke a code: a scan of it says so")
    revoke.add_argument("static_code_id", help="the code's id, sc_...")
    for parser in (create, listing, revoke):
        parser.add_argument("--merchant", required=True, help="the merchant id, mer_...")
        parser.add_argument("--json", action="store_true", help="print JSON")
        add_db(parser)


def _request(args: argparse.Namespace, max_amount: int) -> StaticCodeRequest:
    given = [args.currency, args.open_min, args.open_max]
    if any(given) and not all(given):
        raise InvalidValue("invalid_open_amount", "give --currency, --min and --max together")
    return request_in_major_units(
        label=args.label,
        currency=args.currency,
        least=args.open_min,
        most=args.open_max,
        max_amount=max_amount,
    )


async def run(
    storage: Storage,
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """0, or 2 with what was wrong when nothing was changed."""
    out = out or sys.stdout
    err = err or sys.stderr
    store = StaticCodeStore.of(storage)
    try:
        merchant_id = check_merchant_id(args.merchant)
        found = await storage.merchant_with_key_hash(merchant_id)
        if found is None:
            print(f"psp-server: no merchant {merchant_id}; nothing was changed", file=err)
            return 2
        merchant = found[0]
        if args.action == "create":
            if settings.public_url is None:
                print(
                    "psp-server: give --public-url (or SCAN2PAY_PUBLIC_URL), as psp-server serve"
                    " has it: the printed code holds it",
                    file=err,
                )
                return 2
            made = new_static_code(
                merchant_id,
                check_terminal_id(args.terminal),
                _request(args, settings.max_amount),
                public_url=settings.public_url,
                now=clock.now_ms(),
            )
            await store.create(made)
            codes = [made]
        elif args.action == "list":
            terminal = None if args.terminal is None else check_terminal_id(args.terminal)
            codes = await store.list(merchant_id, terminal)
        else:
            code_id = check_static_code_id(args.static_code_id)
            codes = [await store.revoke(merchant_id, code_id, now=clock.now_ms())]
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}; nothing was changed", file=err)
        return 2
    except Refused as exc:
        print(f"psp-server: {exc.refusal.message}; nothing was changed", file=err)
        return 2
    if args.json:
        shown = [code_json(code, merchant) for code in codes]
        print(json.dumps(shown if args.action == "list" else shown[0]), file=out)
        return 0
    for code in codes:
        print(_line(code), file=out)
    return 0


def _line(code: StaticCode) -> str:
    amounts = code.open_amount
    typed = (
        "no typed amounts"
        if amounts is None
        else f"typed amounts {amounts.minimum}..{amounts.maximum} {amounts.currency} minor units"
    )
    state = "revoked" if code.revoked else "active"
    return (
        f"{code.id}  {code.short_id}  till {code.terminal_id} ({code.label})  {state}  {typed}"
        f"  {code.url}"
    )
