"""A PSP whose database goes away: it answers 503 ``storage_unavailable``,
its loops back off instead of spinning, it says so once per change rather
than once per try, and it comes back by itself with nothing acknowledged
lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledger import assert_ledger_holds, rows
from tests.support.polling import wait_until
from tests.support.postgres import PgCluster, PgServer, create_database
from tests.support.process import (
    NO_RATE_LIMITS,
    PspProcess,
    create_merchant,
    create_wallet,
)
from tests.support.workers import workers_of

OUTAGE_SECONDS = 20.0
# The test's own sweep interval: a loop without backoff would try 20 times
# a second.
SWEEP = ("--sweep-interval", "0.05")


def cpu_seconds(pids: set[int]) -> float:
    """User and system time the processes have used, from /proc."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def call(url: str, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
        url + path,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the test's own server on loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class LightLoad:
    """One shop selling about five times a second: a checkout, then its
    payment. Remembers every payment the PSP acknowledged, and every answer
    by status and error code."""

    def __init__(self, url: str, merchant_key: str, wallet_token: str) -> None:
        self.url = url
        self.merchant_key = merchant_key
        self.wallet_token = wallet_token
        self.paid: list[str] = []
        self.answers: Counter[tuple[int, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="light-load")

    def __enter__(self) -> LightLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.2):
            n += 1
            body = {"order_id": f"L-{n}", "amount": 100, "currency": "EUR"}
            status, created = self._count(call(self.url, "/v1/checkouts", self.merchant_key, body))
            if status != 201:
                continue
            code = created["qr_url"].rsplit("/Q/", 1)[1]
            status, _ = self._count(
                call(self.url, "/v1/payments", self.wallet_token, {"code": code})
            )
            if status == 201:
                self.paid.append(created["id"])

    def _count(self, answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        status, body = answer
        self.answers[(status, str(body.get("error", {}).get("code", "")))] += 1
        return answer


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    """A server of the test's own: it is stopped under the PSP."""
    with PgCluster() as cluster:
        yield cluster


@pytest.mark.timeout(180)
def test_a_database_outage_is_waited_out_calmly_and_loses_nothing(
    own_cluster: PgCluster, tmp_path: Path
) -> None:
    dsn = own_cluster.dsn(create_database(PgServer(own_cluster.dsn("postgres"))))
    from psp_server.storage.postgres import migrate

    migrate(dsn)
    merchant = create_merchant(dsn)
    wallet = create_wallet(dsn, balance="100000.00")
    log_path = tmp_path / "psp.log"
    server = PspProcess(dsn, workers=2, log_path=log_path, extra=(*SWEEP, *NO_RATE_LIMITS))
    try:
        workers: set[int] = wait_until(
            lambda: found if len(found := workers_of(server.process.pid)) == 2 else None,
            "two workers",
        )
        pids = {server.process.pid} | workers
        with LightLoad(server.url, merchant["api_key"], wallet["token"]) as load:
            wait_until(lambda: len(load.paid) >= 5, "payments before the outage")
            own_cluster.halt()
            halted_at = time.monotonic()
            # The first moments see the connections break; the quiet that
            # follows is what is measured.
            time.sleep(1.0)
            logged_before = len(server.log().splitlines())
            used_before, measured_from = cpu_seconds(pids), time.monotonic()
            time.sleep(OUTAGE_SECONDS - (time.monotonic() - halted_at))
            share = (cpu_seconds(pids) - used_before) / (time.monotonic() - measured_from)
            logged_during = server.log().splitlines()[logged_before:]
            own_cluster.resume()
            paid_at_resume = len(load.paid)
            wait_until(lambda: len(load.paid) >= paid_at_resume + 5, "payments after", 30)
        log = server.log()
    finally:
        server.stop()

    outage_answers = {key: n for key, n in load.answers.items() if key[0] != 201}
    print(
        f"\nPSP CPU while the database was down: {share:.1%} of one core; "
        f"answers: {dict(load.answers)}; {len(load.paid)} payments acknowledged"
    )
    assert share < 0.05, f"{share:.1%} of a core while the database was down"
    # Every refusal was the documented one: no 500 and no traceback.
    assert set(outage_answers) == {(503, "storage_unavailable")}, outage_answers
    assert "Traceback" not in log
    # Said once per process when it went and once when it came back, not
    # once per try: the access log is all that the outage's quiet part adds.
    assert len(re.findall(r"the database is unavailable", log)) == 2
    assert len(re.findall(r"the database is back after", log)) == 2
    noise = [line for line in logged_during if "aiohttp.access" not in line]
    assert noise == [], noise
    # Every acknowledged payment is there, paid once.
    payments = Counter(
        checkout_id for (checkout_id,) in rows(dsn, "SELECT checkout_id FROM payments")
    )
    assert all(payments[checkout_id] == 1 for checkout_id in load.paid), payments
    statuses = dict(rows(dsn, "SELECT id, status FROM checkouts"))
    assert all(statuses[checkout_id] == "paid" for checkout_id in load.paid)
    assert_ledger_holds(dsn)


@pytest.mark.timeout(60)
def test_a_sqlite_database_whose_folder_moves_away_is_unavailable_until_it_is_back(
    tmp_path: Path,
) -> None:
    """SQLite would go on committing into a file whose folder was moved or
    deleted, and those commits would be gone at the next start: the PSP
    answers 503 instead, and serves again once the folder is back."""
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "psp.db"
    merchant = create_merchant(db)
    server = PspProcess(db, extra=SWEEP, log_path=tmp_path / "psp.log")
    try:
        body = {"order_id": "S-1", "amount": 100, "currency": "EUR"}
        assert call(server.url, "/v1/checkouts", merchant["api_key"], body)[0] == 201
        moved = tmp_path / "elsewhere"
        shutil.move(folder, moved)
        try:
            body["order_id"] = "S-2"
            status, answer = call(server.url, "/v1/checkouts", merchant["api_key"], body)
            assert (status, answer.get("error", {}).get("code")) == (503, "storage_unavailable")
            time.sleep(0.5)  # the sweeper's tries meanwhile back off and log nothing
        finally:
            shutil.move(moved, folder)
        body["order_id"] = "S-3"
        assert call(server.url, "/v1/checkouts", merchant["api_key"], body)[0] == 201
        log = server.log()
    finally:
        server.stop()
    assert [order for (order,) in rows(str(db), "SELECT order_id FROM checkouts")] == [
        "S-1",
        "S-3",
    ]
    assert log.count("the database is unavailable") == 1
    assert log.count("the database is back after") == 1
    assert "Traceback" not in log
