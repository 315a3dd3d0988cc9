"""``psp-server`` as an operator uses it: separate processes, real files."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.timefmt import from_rfc3339
from scan2pay_common.topics import events_topic
from tests.support.broker import Mosquitto
from tests.support.db import connect as db_connect
from tests.support.file_clock import FileClock
from tests.support.mqtt import Subscriber
from tests.support.plain_http import http
from tests.support.process import PspProcess, create_merchant, create_wallet, run_cli


def test_merchant_create_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "psp.db"
    result = run_cli("merchant", "create", "--name", "Bäckerei Müller", "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"merchant_id", "name", "api_key"}
    assert created["name"] == "Bäckerei Müller"
    assert created["api_key"].startswith("mk_")
    assert len(created["api_key"]) >= 30
    wal = tmp_path / "psp.db-wal"
    raw = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert created["api_key"].encode() not in raw
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT api_key_hash FROM merchants").fetchone()
    assert stored != created["api_key"]
    assert len(stored) == 64


def test_human_output_says_the_key_is_shown_once(tmp_path: Path) -> None:
    result = run_cli("merchant", "create", "--name", "Shop", "--db", str(tmp_path / "p.db"))
    assert result.returncode == 0
    assert "api_key: mk_" in result.stdout
    assert "shown once" in result.stdout


def test_wallet_create_takes_major_units_exactly(db: str) -> None:
    for currency, balance, minor in [
        ("EUR", "50.00", 5000),
        ("JPY", "1200", 1200),
        ("KWD", "1.5", 1500),
    ]:
        result = run_cli(
            "wallet",
            "create",
            "--name",
            "w",
            "--currency",
            currency,
            "--balance",
            balance,
            "--json",
            "--db",
            db,
        )
        assert result.returncode == 0, result.stderr
        wallet = json.loads(result.stdout)
        assert (wallet["currency"], wallet["balance"]) == (currency, minor)
        assert wallet["token"].startswith("wt_")


def test_wallet_create_refuses_bad_input_and_stores_nothing(db: str) -> None:
    for args, message in [
        (("--currency", "EUR", "--balance", "12.345"), "decimal places"),
        (("--currency", "ABC", "--balance", "1"), "not an ISO 4217 currency"),
        (("--currency", "EUR", "--balance", "-5"), "not an amount"),
        (("--currency", "EUR", "--balance", "1e3"), "not an amount"),
    ]:
        result = run_cli("wallet", "create", "--name", "w", *args, "--db", db)
        assert result.returncode == 2, result
        assert message in result.stderr
    with db_connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM wallets").fetchone() == (0,)


def test_database_comes_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = run_cli("merchant", "create", "--name", "Env", "--json", env={"SCAN2PAY_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert db.exists()


def test_every_config_error_is_reported_at_once(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        "--port",
        "http",
        "--mqtt",
        "http://broker",
        "--max-amount",
        "0",
        "--public-url",
        "ftp://x",
        "--db",
        str(tmp_path / "x.db"),
        "--trusted-proxies",
        "10.0.0.1/8,proxy.internal",
        env={"SCAN2PAY_LOG_LEVEL": "LOUD", "SCAN2PAY_LOG_FORMAT": "xml"},
    )
    assert result.returncode == 2
    for name in (
        "port (SCAN2PAY_PORT)",
        "mqtt (SCAN2PAY_MQTT)",
        "max_amount",
        "public_url",
        "log_level (SCAN2PAY_LOG_LEVEL)",
        "log_format (SCAN2PAY_LOG_FORMAT): 'xml' is not a log format",
        "trusted_proxies (SCAN2PAY_TRUSTED_PROXIES): '10.0.0.1/8' has host bits set;"
        " 'proxy.internal' is not a network",
    ):
        assert name in result.stderr, result.stderr
    assert not (tmp_path / "x.db").exists()


def test_missing_database_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("merchant", "create", "--name", "x", "--db", str(tmp_path / "no" / "p.db"))
    assert result.returncode == 3
    assert "does not exist" in result.stderr


def test_migrate_is_repeatable(db: str) -> None:
    assert run_cli("migrate", "--db", db).returncode == 0
    again = run_cli("migrate", "--db", db)
    assert again.returncode == 0
    assert "up to date" in again.stdout


def test_serve_runs_the_whole_psp_side_of_the_flow(
    db: str, tmp_path: Path, broker: Mosquitto
) -> None:
    merchant = create_merchant(db)
    wallet = create_wallet(db, balance="50.00")
    server = PspProcess(
        db,
        mqtt=broker.url,
        extra=("--public-url", "HTTPS://PAY.EXAMPLE.TEST"),
        log_path=tmp_path / "psp.log",
    )
    subscriber = Subscriber(broker.port, events_topic(merchant["merchant_id"]))
    try:
        status, checkout = http(
            "POST",
            f"{server.url}/v1/checkouts",
            {"order_id": "A-1001", "amount": 1234, "currency": "EUR"},
            merchant["api_key"],
        )
        assert status == 201
        assert checkout["qr_url"].startswith("HTTPS://PAY.EXAMPLE.TEST/Q/")
        code = checkout["qr_url"].rsplit("/", 1)[1]
        status, payment = http("POST", f"{server.url}/v1/payments", {"code": code}, wallet["token"])
        assert status == 201
        assert payment["status"] == "succeeded"
        (message,) = subscriber.wait_for(1)
        event = CheckoutEvent.from_json(message.payload)
        assert (event.type, event.checkout.id) == ("checkout.paid", checkout["id"])
    finally:
        subscriber.close()
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.log()
    log = server.log()
    assert '"route":"/v1/payments","status":201' in log
    for secret in (merchant["api_key"], wallet["token"]):
        assert secret not in log


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "serve", "--port", str(port), "--db", str(tmp_path / "p.db"), "--mqtt", "none"
        )
    assert result.returncode == 3
    assert "cannot listen" in result.stderr


def test_a_killed_server_keeps_every_acknowledged_payment_and_event(
    db: str, tmp_path: Path, broker: Mosquitto
) -> None:
    """SIGKILL right after the 201s: the rows were on disk before the answers
    went out, and the outbox sends the events once the server is back."""
    merchant = create_merchant(db)
    wallet = create_wallet(db, balance="100")
    subscriber = Subscriber(
        broker.port, events_topic(merchant["merchant_id"]), client_id="kill-test", persistent=True
    )
    # No broker for the first server: every event stays in its outbox.
    server = PspProcess(db, mqtt="mqtt://127.0.0.1:1", log_path=tmp_path / "psp.log")
    paid = []
    try:
        for n in range(5):
            status, checkout = http(
                "POST",
                f"{server.url}/v1/checkouts",
                {"order_id": f"K-{n}", "amount": 100, "currency": "EUR"},
                merchant["api_key"],
            )
            assert status == 201
            status, _ = http(
                "POST",
                f"{server.url}/v1/payments",
                {"code": checkout["qr_url"].rsplit("/", 1)[1]},
                wallet["token"],
            )
            assert status == 201
            paid.append(checkout["id"])
    finally:
        server.stop(signal.SIGKILL)
    restarted = PspProcess(db, mqtt=broker.url, log_path=tmp_path / "psp.log")
    try:
        for checkout_id in paid:
            status, checkout = http(
                "GET", f"{restarted.url}/v1/checkouts/{checkout_id}", token=merchant["api_key"]
            )
            assert (status, checkout["status"]) == (200, "paid")
        got = [CheckoutEvent.from_json(m.payload) for m in subscriber.wait_for(5, 20)]
        assert [e.checkout.id for e in got] == paid
        assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    finally:
        subscriber.close()
        restarted.stop()
    with db_connect(db) as conn:
        assert tuple(conn.execute("SELECT balance FROM wallets").fetchone()) == (10_000 - 500,)


def test_keys_and_tokens_are_rotated_and_revoked_from_the_cli(db: str, tmp_path: Path) -> None:
    merchant = create_merchant(db)
    wallet = create_wallet(db)
    rotated = run_cli(
        "merchant", "rotate-key", "--merchant", merchant["merchant_id"], "--json", "--db", db
    )
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["api_key"]
    assert new_key.startswith("mk_")
    assert new_key != merchant["api_key"]
    revoked = run_cli("wallet", "revoke-token", "--wallet", wallet["wallet_id"], "--db", db)
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout
    unknown = run_cli("merchant", "revoke-key", "--merchant", "mer_nobody", "--db", db)
    assert unknown.returncode == 2
    assert "no merchant mer_nobody" in unknown.stderr
    server = PspProcess(db, log_path=tmp_path / "psp.log")
    try:
        assert http("GET", f"{server.url}/v1/merchant", token=merchant["api_key"])[0] == 401
        assert http("GET", f"{server.url}/v1/merchant", token=new_key)[0] == 200
        status, body = http(
            "POST", f"{server.url}/v1/payments", {"code": "A" * 32}, wallet["token"]
        )
        assert (status, body["error"]["code"]) == (401, "unauthorized")
    finally:
        server.stop()


def test_the_commands_date_what_they_write_by_the_clock_they_are_given(
    db: str, tmp_path: Path
) -> None:
    """``keys rotate`` and ``merchant create`` take now from the clock
    main() is given, as the server does, not from the system's."""
    clock = FileClock(tmp_path / "clock")
    later = from_rfc3339("2040-01-01T00:00:00Z")
    clock.advance_to(later)
    made = run_cli("merchant", "create", "--name", "Later", "--json", "--db", db, clock=clock)
    assert made.returncode == 0, made.stderr
    rotated = run_cli("keys", "rotate", "--db", db, clock=clock)
    assert rotated.returncode == 0, rotated.stderr
    shown = run_cli("keys", "show", "--db", db)
    (active,) = [line for line in shown.stdout.splitlines() if "  active, created " in line]
    assert active.split("  active, created ")[1].startswith("2040-01-01T")
    with db_connect(db) as conn:
        (created_at,) = conn.execute("SELECT created_at FROM merchants").fetchone()
    assert later <= created_at < later + 60_000


def test_merchant_update_sets_the_qr_settings_or_changes_nothing(db: str) -> None:
    merchant = create_merchant(db, "Bäckerei Müller")
    mid = merchant["merchant_id"]

    def stored() -> tuple[object, ...]:
        with db_connect(db) as conn:
            row: tuple[object, ...] = conn.execute(
                "SELECT qr_format, mcc, country, city, emv_profile, emv_gui FROM merchants"
                " WHERE id = ?",
                (mid,),
            ).fetchone()
            return row

    for args, message in [
        (("--qr-format", "emv"), "needs mcc, country, city"),
        (("--qr-format", "emv", "--mcc", "58", "--country", "DE", "--city", "B"), "mcc must"),
        (("--mcc", "5814", "--country", "deu"), "country must"),
        (("--city", "Sankt Peter-Ording"), "city must be 1 to 15"),
        (("--emv-profile", "upi"), "unknown EMV profile"),
        (("--emv-gui", "a b"), "globally unique identifier"),
    ]:
        result = run_cli("merchant", "update", mid, *args, "--db", db)
        assert result.returncode == 2, result
        assert message in result.stderr
        assert stored() == ("url", None, None, None, "scan2pay", None)
    # A PIX profile needs an https:// public URL; the default one is http://.
    pix = ("--emv-profile", "pix", "--qr-format", "emv", "--mcc", "5812")
    where = ("--country", "BR", "--city", "São Paulo")
    result = run_cli("merchant", "update", mid, *pix, *where, "--db", db)
    assert result.returncode == 2
    assert "https:// URLs only" in result.stderr
    assert stored()[0] == "url"
    result = run_cli(
        "merchant", "update", mid, *pix, *where, "--public-url", "https://pay.example.com",
        "--json", "--db", db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "id": mid,
        "name": "Bäckerei Müller",
        "qr_format": "emv",
        "mcc": "5812",
        "country": "BR",
        "city": "São Paulo",
        "emv_profile": "pix",
        "emv_gui": None,
    }
    assert stored() == ("emv", "5812", "BR", "São Paulo", "pix", None)

    result = run_cli(
        "merchant", "update", mid, "--qr-format", "emv", "--emv-profile", "scan2pay",
        "--mcc", "5814", "--country", "DE", "--city", "Berlin", "--emv-gui", "de.example",
        "--db", db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "qr_format: emv" in result.stdout
    assert "emv_gui: de.example" in result.stdout
    assert stored() == ("emv", "5814", "DE", "Berlin", "scan2pay", "de.example")

    unknown = run_cli("merchant", "update", "mer_nobody", "--qr-format", "url", "--db", db)
    assert unknown.returncode == 2
    assert "no merchant mer_nobody" in unknown.stderr
