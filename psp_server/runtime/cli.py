"""``psp-server``: serve the API, and make merchants and wallets."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from psp_server.api.guards.bucket_table import BucketTable
from psp_server.core.errors import ConfigError, PSPError, Refused
from psp_server.core.qr import QR_FORMATS, QrSettingsChange, check_buildable
from psp_server.metrics import SharedMetrics
from psp_server.mqtt import accounts as mqtt_accounts
from psp_server.pairing import cli as pairing_cli
from psp_server.runtime import config, logs, static_code_cli, workers
from psp_server.runtime.server import (
    listen,
    listen_metrics,
    local_url,
    metrics_url,
    start_server,
)
from psp_server.storage import Storage, backends, open_storage
from scan2pay_common import sdnotify
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.emv import profiles
from scan2pay_common.errors import InvalidValue
from scan2pay_common.free_text import check_free_text
from scan2pay_common.money import check_currency, parse_major
from scan2pay_common.timefmt import to_rfc3339

log = logging.getLogger("psp_server")

EXIT_CONFIG = 2
EXIT_STORAGE = 3


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help=f"{backends.forms()} (env SCAN2PAY_DB; default scan2pay.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psp-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API, the outbox relay and the sweeper")
    serve.add_argument("--host", help="address to listen on (env SCAN2PAY_HOST; 127.0.0.1)")
    serve.add_argument("--port", help="port, 0 for any free one (env SCAN2PAY_PORT; 8080)")
    _add_db(serve)
    serve.add_argument("--mqtt", help="broker mqtt://host:port or 'none' (env SCAN2PAY_MQTT)")
    serve.add_argument("--public-url", help="URL wallets reach (env SCAN2PAY_PUBLIC_URL)")
    serve.add_argument("--max-amount", help="largest amount, minor units (SCAN2PAY_MAX_AMOUNT)")
    serve.add_argument("--sweep-interval", help="seconds between expiry sweeps")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    serve.add_argument(
        "--log-format", help="text, or json: one object per line (env SCAN2PAY_LOG_FORMAT; text)"
    )
    serve.add_argument(
        "--trusted-proxies",
        help="networks of the reverse proxies whose X-Forwarded-* headers are believed,"
        " like 127.0.0.1/32 (env SCAN2PAY_TRUSTED_PROXIES; none)",
    )
    serve.add_argument("--webhook-retry-base", help="seconds before a webhook's first retry (10)")
    serve.add_argument("--webhook-retry-max", help="longest webhook retry delay, seconds (3600)")
    serve.add_argument(
        "--webhook-retry-window", help="seconds of webhook retries after the first try (86400)"
    )
    serve.add_argument("--webhook-timeout", help="seconds a webhook endpoint has to answer (10)")
    serve.add_argument(
        "--webhook-allow-networks",
        help="networks webhooks may reach besides public addresses, like 127.0.0.0/8,::1/128"
        " (none)",
    )
    rate = "requests/period like 30/10s, or off"
    serve.add_argument("--rate-qr-per-ip", help=f"GET /Q/{{code}} per address: {rate} (300/60s)")
    serve.add_argument("--rate-qr-per-token", help=f"GET /Q/{{code}} per token: {rate} (300/60s)")
    serve.add_argument("--rate-pay-per-ip", help="POST /v1/payments per address (3000/60s)")
    serve.add_argument("--rate-pay-per-token", help="POST /v1/payments per token (600/60s)")
    serve.add_argument("--body-timeout", help="seconds a client has to send a body (10)")
    serve.add_argument(
        "--header-timeout", help="seconds a connection has for a request's headers (10)"
    )
    serve.add_argument(
        "--workers",
        help=f"server processes on the one port; over 1 needs {backends.shared_names()} (1)",
    )
    pairing = "pairing terminals (docs/pairing.md)"
    serve.add_argument(
        "--terminal-mqtt", help=f"{pairing}: the broker as terminals reach it, mqtts://host:8883"
    )
    serve.add_argument("--terminal-mqtt-ca", help=f"{pairing}: the PEM file of the broker's CA")
    serve.add_argument(
        "--mosquitto-dir", help=f"{pairing}: the folder of the broker's passwd and acl files"
    )
    serve.add_argument(
        "--mosquitto-reload", help=f"{pairing}: the command that makes the broker reread them"
    )
    serve.add_argument("--rate-pair-per-ip", help=f"POST /v1/pairings per address: {rate} (30/h)")
    serve.add_argument(
        "--rate-pair-approve-per-ip", help=f"board approvals per address: {rate} (10/60s)"
    )
    serve.add_argument(
        "--rate-pair-approve-per-code", help=f"board approvals per code: {rate} (5/600s)"
    )
    serve.add_argument(
        "--rate-static-per-ip",
        help=f"POST /S/{{code}}/checkouts per address: {rate} (60/60s)",
    )
    serve.add_argument(
        "--rate-static-per-code",
        help=f"POST /S/{{code}}/checkouts per printed code: {rate} (30/60s)",
    )

    serve.add_argument("--metrics", help="on or off: serve GET /metrics (env SCAN2PAY_METRICS; on)")
    serve.add_argument(
        "--metrics-host", help="address of the metrics port (env SCAN2PAY_METRICS_HOST; 127.0.0.1)"
    )
    serve.add_argument(
        "--metrics-port",
        help="serve GET /metrics here only, not on --port; 0 for any free one (none)",
    )
    serve.add_argument(
        "--ready-relay-lag",
        help="seconds the oldest unpublished event may wait before /readyz says 503 (60)",
    )

    migrate = sub.add_parser("migrate", help="create or update the database schema")
    _add_db(migrate)

    backup = sub.add_parser(
        "backup", help="copy a SQLite database while the server runs (PostgreSQL: pg_dump)"
    )
    backup.add_argument("--to", required=True, type=Path, help="the new file to write")
    _add_db(backup)

    merchant = sub.add_parser("merchant", help="manage merchants")
    merchant_sub = merchant.add_subparsers(dest="action", required=True)
    m_create = merchant_sub.add_parser("create", help="create a merchant and print its API key")
    m_create.add_argument("--name", required=True)
    m_create.add_argument("--json", action="store_true", help="print JSON")
    _add_db(m_create)
    for action, verb in (("rotate-key", "replace"), ("revoke-key", "revoke")):
        m_secret = merchant_sub.add_parser(action, help=f"{verb} a merchant's API key")
        m_secret.add_argument("--merchant", required=True, help="the merchant id, mer_…")
        m_secret.add_argument("--json", action="store_true", help="print JSON")
        _add_db(m_secret)

    m_update = merchant_sub.add_parser(
        "update", help="change a merchant's QR settings: a bare URL or an EMV payload"
    )
    m_update.add_argument("merchant_id", help="the merchant id, mer_…")
    m_update.add_argument("--qr-format", choices=QR_FORMATS, help="url (default) or emv")
    m_update.add_argument("--mcc", help="merchant category code, 4 digits, like 5814")
    m_update.add_argument("--country", help="ISO 3166-1 alpha-2, like DE")
    m_update.add_argument("--city", help="at most 15 characters, like Berlin")
    m_update.add_argument(
        "--emv-profile", help=f"EMV template profile ({', '.join(p.name for p in profiles())})"
    )
    m_update.add_argument("--emv-gui", help="globally unique identifier (default: the profile's)")
    m_update.add_argument("--json", action="store_true", help="print JSON")
    _add_db(m_update)
    m_update.add_argument("--public-url", help="the URL wallets reach (checked to fit EMV)")

    wallet = sub.add_parser("wallet", help="manage demo wallets")
    wallet_sub = wallet.add_subparsers(dest="action", required=True)
    w_create = wallet_sub.add_parser("create", help="create a wallet and print its token")
    w_create.add_argument("--name", required=True)
    w_create.add_argument("--currency", required=True, help="ISO 4217 code, like EUR")
    w_create.add_argument("--balance", default="0", help="in major units, like 50.00")
    w_create.add_argument("--json", action="store_true", help="print JSON")
    _add_db(w_create)
    for action, verb in (("rotate-token", "replace"), ("revoke-token", "revoke")):
        w_secret = wallet_sub.add_parser(action, help=f"{verb} a wallet's bearer token")
        w_secret.add_argument("--wallet", required=True, help="the wallet id, wal_…")
        w_secret.add_argument("--json", action="store_true", help="print JSON")
        _add_db(w_secret)

    keys = sub.add_parser("keys", help="the Ed25519 keys that sign events and display tickets")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    _add_db(keys_sub.add_parser("show", help="list the keys; the active public key last"))
    _add_db(keys_sub.add_parser("rotate", help="make a new active key; old ones still verify"))

    static_code_cli.add_parser(sub, _add_db)

    # terminal|cashier|relay create, and terminal approve|revoke (pairing)
    accounts = mqtt_accounts.add_parsers(sub)
    pairing_cli.add_actions(accounts["terminal"], _add_db)
    return parser


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where it is installed (every platform but Windows): its event
    loop and transports in C cut the server's CPU per request by about a
    tenth (docs/performance.md); asyncio's own loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: Sequence[str] | None = None, *, clock: Clock = SYSTEM_CLOCK) -> int:
    """``clock``: the server's now, and the commands' (the dates they
    write); the system's, unless a test runs this ``main`` itself with one
    it moves (tests/support/psp_runner.py)."""
    args = build_parser().parse_args(argv)
    if args.command in mqtt_accounts.COMMANDS and args.action == "create":
        return mqtt_accounts.run(args)  # the broker's files; no database, no settings
    flags = {k: v for k, v in vars(args).items() if k in config.FIELDS}
    try:
        settings = config.load(flags)
    except ConfigError as exc:
        print("psp-server: bad configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "serve" and settings.workers > 1:
            return _serve_workers(settings, clock)
        if args.command == "serve":
            _run_loop(_serve(settings, clock=clock))
            return 0
        if args.command == "backup":
            backends.choose(settings.db).backup(args.to)
            print(f"database {settings.db} backed up to {args.to}")
            return 0
        if args.command == "migrate":
            asyncio.run(_with_storage(settings, _noop, clock))
            print(f"database {settings.db} is up to date")
            return 0
        if args.command == "merchant" and args.action == "update":
            if settings.public_url is None:
                settings = config.with_default_public_url(settings, settings.port)
            return asyncio.run(
                _with_storage(settings, lambda s: _merchant_update(s, settings, args), clock)
            )
        if args.command in ("merchant", "wallet") and args.action != "create":
            return asyncio.run(_with_storage(settings, lambda s: _replace_secret(s, args), clock))
        if args.command == "merchant":
            return asyncio.run(_with_storage(settings, lambda s: _merchant_create(s, args), clock))
        if args.command == "wallet":
            return asyncio.run(_with_storage(settings, lambda s: _wallet_create(s, args), clock))
        if args.command == "terminal":
            return asyncio.run(
                _with_storage(
                    settings, lambda s: pairing_cli.run(s, settings, args, clock=clock), clock
                )
            )
        if args.command == static_code_cli.COMMAND:
            return asyncio.run(
                _with_storage(
                    settings, lambda s: static_code_cli.run(s, settings, args, clock=clock), clock
                )
            )
        if args.command == "keys" and args.action == "rotate":
            return asyncio.run(_with_storage(settings, lambda s: _keys_rotate(s, clock), clock))
        if args.command == "keys":
            return asyncio.run(_with_storage(settings, _keys_show, clock))
    except PSPError as exc:
        print(f"psp-server: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    return EXIT_CONFIG  # pragma: no cover - argparse rejects other commands


async def _noop(storage: Storage) -> int:
    return 0


async def _replace_secret(storage: Storage, args: argparse.Namespace) -> int:
    """Rotates or revokes a merchant's key or a wallet's token; the old one
    stops working at once, and a new one is shown once."""
    owner = args.merchant if args.command == "merchant" else args.wallet
    revoke = args.action.startswith("revoke")
    try:
        secret = await storage.replace_secret(args.command, owner, revoke=revoke)
    except Refused:
        print(f"psp-server: no {args.command} {owner}", file=sys.stderr)
        return EXIT_CONFIG
    name = "api_key" if args.command == "merchant" else "token"
    if args.json:
        print(json.dumps({"id": owner, "revoked": revoke, name: secret}))
    elif revoke:
        print(f"{args.command} {owner}: revoked; the old {name} no longer works")
    else:
        print(f"{args.command} {owner}: {name}: {secret}")
        print(f"(the old {name} no longer works; the new one is shown once)")
    return 0


async def _with_storage(settings: config.Settings, action: Any, clock: Clock) -> int:
    storage = await asyncio.to_thread(open_storage, settings.db, clock)
    try:
        result: int = await action(storage)
        return result
    finally:
        await storage.close()


async def _merchant_create(storage: Storage, args: argparse.Namespace) -> int:
    try:
        name = check_name(args.name)
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    merchant, key = await storage.create_merchant(name)
    if args.json:
        print(json.dumps({"merchant_id": merchant.id, "name": merchant.name, "api_key": key}))
    else:
        print(f"merchant_id: {merchant.id}\nname: {merchant.name}")
        print(f"api_key: {key}\n(the key is shown once; only its hash is stored)")
    return 0


async def _merchant_update(
    storage: Storage, settings: config.Settings, args: argparse.Namespace
) -> int:
    """The QR settings of ``PATCH /v1/merchant``, with the same checks."""
    given = {
        name: getattr(args, name)
        for name in ("qr_format", "mcc", "country", "city", "emv_profile", "emv_gui")
        if getattr(args, name) is not None
    }
    found = await storage.merchant_with_key_hash(args.merchant_id)
    if found is None:
        print(f"psp-server: no merchant {args.merchant_id}", file=sys.stderr)
        return EXIT_CONFIG
    merchant = found[0]
    try:
        qr = QrSettingsChange.parse(given).applied_to(merchant.qr)
        if qr.format == "emv":
            check_buildable(merchant.name, qr, settings.require_public_url())
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    updated = await storage.update_qr_settings(merchant.id, qr)
    if updated is None:
        print(f"psp-server: no merchant {args.merchant_id}", file=sys.stderr)
        return EXIT_CONFIG
    body = {"id": updated.id, "name": updated.name, **updated.qr.to_dict()}
    if args.json:
        print(json.dumps(body))
    else:
        for key, value in body.items():
            print(f"{key}: {'-' if value is None else value}")
    return 0


async def _wallet_create(storage: Storage, args: argparse.Namespace) -> int:
    try:
        name = check_name(args.name)
        currency = check_currency(args.currency)
        balance = parse_major(args.balance, currency)
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    wallet, token = await storage.create_wallet(name, currency, balance)
    if args.json:
        print(
            json.dumps(
                {
                    "wallet_id": wallet.id,
                    "name": wallet.name,
                    "currency": wallet.currency,
                    "balance": wallet.balance,
                    "token": token,
                }
            )
        )
    else:
        print(f"wallet_id: {wallet.id}\nbalance: {args.balance} {currency}")
        print(f"token: {token}\n(the token is shown once; only its hash is stored)")
    return 0


async def _keys_show(storage: Storage) -> int:
    """Every key, then the active public key alone on the last line, for
    scripts: ``psp-server keys show | tail -1``."""
    keys = await storage.signing_keys()
    for key in keys:
        state = "active" if key.active else "verifies only"
        print(f"{key.kid}  {key.public_key}  {state}, created {to_rfc3339(key.created_at)}")
    active = next((key.public_key for key in keys if key.active), None)
    print(active or storage.signing_key.public.text)
    return 0


async def _keys_rotate(storage: Storage, clock: Clock) -> int:
    made = await storage.rotate_signing_key(now=clock.now_ms())
    print(
        f"new active key {made.kid}; the old keys stay valid for verification. Give terminals"
        " the new public key next to the old one, then restart psp-server serve to sign with it.",
        file=sys.stderr,
    )
    print(made.public_key)
    return 0


# Python collects its youngest generation every 700 new container objects;
# a request makes hundreds, so the collector ran every few requests, 5% of
# the server's time, to find garbage that reference counting frees anyway.
# Every 20,000 keeps the memory bound and the cost negligible.
GC_THRESHOLD = (20_000, 20, 20)


def _tune_collector() -> None:
    """What the server imported and built at start lives as long as it does:
    frozen, the collector's full passes skip it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _announce(settings: config.Settings) -> None:
    url = local_url(settings)
    line = f"psp-server listening on {url} public_url={settings.public_url}"
    if settings.metrics_port is not None:
        line += f" metrics_url={metrics_url(settings)}"
    print(line, flush=True)


async def _serve(
    settings: config.Settings,
    sock: socket.socket | None = None,
    metrics_sock: socket.socket | None = None,
    *,
    clock: Clock,
    rate_buckets: BucketTable | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT: on a socket of its own, or as a
    worker on its supervisor's ``sock`` (and ``metrics_sock``) and
    ``rate_buckets``."""
    server = await start_server(
        settings, sock=sock, metrics_sock=metrics_sock, clock=clock, rate_buckets=rate_buckets
    )
    _tune_collector()
    if sock is None:
        _announce(server.settings)
        # Under systemd (deploy/psp/psp-server.service, Type=notify): the
        # socket is listening and the database is open.
        sdnotify.notify("READY=1")
    else:  # a worker: its supervisor announced the socket
        log.info("ready, serving on %s", server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if sock is None:
            sdnotify.notify("STOPPING=1")
        await server.stop()


def _serve_workers(settings: config.Settings, clock: Clock) -> int:
    """``serve --workers N``: this process binds the port and migrates the
    database once, then supervises N worker processes that serve on the port."""
    sock, settings = listen(settings)
    metrics_sock, settings = listen_metrics(settings)
    # Here rather than in each worker: the workers would start by racing to
    # migrate. The storage is closed again before the fork, so that no
    # worker inherits a connection or a thread.
    asyncio.run(_with_storage(settings, _noop, clock))
    # Listening before any worker runs: a client that connects meanwhile
    # waits in the queue rather than being refused.
    sock.listen()
    if metrics_sock is not None:
        metrics_sock.listen()
    # Every worker's counters in one folder, so that a scrape, whichever
    # worker answers it, adds them all up.
    shared = SharedMetrics.make() if settings.metrics else None
    # Made here, before the fork, so that every worker (and any that
    # replaces one) has the same buckets: a limit of N a minute is N a
    # minute whatever the number of workers (bucket_table.py).
    rate_buckets = BucketTable.shared()
    _announce(settings)
    # Ready for systemd once the socket listens and the schema is current:
    # a connection that comes before a worker is up waits in the queue.
    sdnotify.notify("READY=1")

    def work(number: int) -> int:
        logs.name_worker(number)
        try:
            _run_loop(_serve(settings, sock, metrics_sock, clock=clock, rate_buckets=rate_buckets))
        except PSPError as exc:
            log.error("worker %d cannot serve: %s", number, exc)
            return EXIT_STORAGE
        return 0

    try:
        return workers.supervise(
            settings.workers, work, ended=None if shared is None else shared.worker_ended
        )
    finally:
        rate_buckets.close()
        if shared is not None:
            shared.remove()


def check_name(text: str) -> str:
    """A merchant's or wallet's name: what the pages and the terminal show."""
    name = check_free_text(text.strip(), field="--name", code="invalid_name", maximum=100)
    if not name:
        raise InvalidValue("invalid_name", "--name must be 1 to 100 characters")
    return name
